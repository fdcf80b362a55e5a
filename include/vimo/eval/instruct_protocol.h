// Stage-3 evaluation on held-out synthetic conversations (`vimo eval instruct`): editing (the edited
// motion against the true edited scene and against the unedited source; the evaluator's preference for
// the edited caption; FID and MPJPE as the paper's Table 3), reasoning (answers naming the right
// interaction; METEOR, BLEU) and story (the next scene a valid continuation).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vimo/eval/captions.h"
#include "vimo/vim/model.h"

namespace vimo::eval {

struct InstructEvalOptions {
  std::string run;            // the stage-3 LM run
  std::string evaluator;      // evaluator run / checkpoint / converted .safetensors
  std::string clip_vocab;     // clip_bpe evaluators: CLIP's merges file
  std::string conversations;  // directory of <split>.jsonl and meta.json (`vimo data conversations --synthetic`)
  std::string tokens;         // token-cache directory of the conversation clips
  std::string packed;         // packed dataset of the conversation clips (the true motions)
  std::string split = "test";
  int64_t limit = 0;          // conversations per task (0 = all)
  int64_t rows = 8;           // generation batch
  vim::GenerateSettings sampling;
  CaptionOptions captions;    // METEOR and tokenizer of the reasoning scores
  std::string out;            // default <run>/eval/instruct_<split>.json (markdown beside it)
};

// Writes the JSON ({"task": "instruct", "split", "rows": {"editing", "source_unedited", "source_tokenized",
// "edited_tokenized", "edited_true", "reasoning", "story"}, "per_edit", "per_reasoning_form", "counts", ...},
// each metric {"mean", "ci95"}; only the rows of tasks the split holds) and its markdown; returns it.
nlohmann::ordered_json evaluate_instruct(const InstructEvalOptions& o);

}  // namespace vimo::eval

// The paper's protocols over a trained LM run (stage 2 or 3) on a token-cache split, scored by a
// text-motion evaluator: t2m (FID, R-precision, MM-Dist, Diversity, MultiModality), m2t (R-precision
// and MM-Dist of generated captions, BLEU, ROUGE-L, CIDEr-D, METEOR) and reactions (reactor MPJPE,
// FID, R-precision). Generation is batched and cached in the run directory, so a killed evaluation
// continues where it stopped.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vimo/vim/model.h"

namespace vimo::eval {

struct RunProtocolOptions {
  std::string run;        // the LM run
  std::string evaluator;  // evaluator run / checkpoint / converted .safetensors
  std::string clip_vocab; // clip_bpe evaluators: CLIP's merges file
  std::string tokens;     // token-cache directory (default: the run's data.tokens)
  std::string packed;     // packed dataset of the real motions (default: the evaluator's data.packed)
  std::string split = "test";
  std::string protocol = "intergen";
  int64_t batch_size = 0;     // R-precision pool; 0 = the protocol's (InterGen: 96 x 3 = 288)
  int64_t replications = 20;
  int64_t generations = 1;    // distinct generation passes; replication r uses pass r % generations
  int64_t mm_texts = 0;       // t2m MultiModality: texts with mm_repeats generations each (InterGen: 100 x 30)
  int64_t mm_repeats = 10;
  int64_t limit = 0;          // clips of the split (0 = all)
  int64_t rows = 16;          // generation batch
  int64_t seed = 0;           // draws of the metric protocol and of sampling
  vim::GenerateSettings sampling;  // pass k samples with seed sampling.seed + k
  std::string out;            // JSON written here (default <run>/eval/<task>_<split>.json, markdown beside it)
};

// Each writes its JSON ({"task", "split", "protocol", "replications", "rows": {"gt", "model", controls}})
// and a markdown table, and returns the JSON. Controls: t2m "random_tokens" (uniformly random motion
// codes of the real lengths); reaction "mirrored_actor" (the actor's own motion, mirrored, as the reactor).
nlohmann::ordered_json evaluate_t2m(const RunProtocolOptions& o);
nlohmann::ordered_json evaluate_m2t(const RunProtocolOptions& o);
nlohmann::ordered_json evaluate_reaction(const RunProtocolOptions& o);

}  // namespace vimo::eval

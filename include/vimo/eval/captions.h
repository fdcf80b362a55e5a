// Caption metrics as pycocoevalcap computes them: BLEU-1..4 (corpus level, closest reference
// length), ROUGE-L (beta 1.2), CIDEr-D (document frequencies over the evaluated references, sigma 6,
// clipping, x10) on its PTB tokenization, and METEOR 1.5 through the reference jar when Java is there.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

namespace vimo::eval {

// One evaluated item: its references and the generated caption (raw text).
struct CaptionSet {
  std::string id;
  std::vector<std::string> refs;
  std::string hyp;
};

// Reads refs.json (object: id -> list of strings) and hyps.json (object: id -> string, or a list of
// one string) in the refs file's order. Different id sets, empty or non-string captions, an id
// without references: vimo::Error naming the file, the id and the fix.
std::vector<CaptionSet> load_caption_sets(const std::string& refs_path, const std::string& hyps_path);

// After tokenization: tokens joined by single spaces (pycocoevalcap's strings).
struct TokenizedSet {
  std::vector<std::string> refs;
  std::string hyp;
};

std::array<double, 4> bleu(const std::vector<TokenizedSet>& sets);  // BLEU-1..4
double rouge_l(const std::vector<TokenizedSet>& sets);              // mean over sets
double cider_d(const std::vector<TokenizedSet>& sets);              // mean over sets

struct CaptionOptions {
  std::string tokenizer = "builtin";  // builtin (vimo's PTB transcription) | stanford (the CoreNLP jar)
  std::string meteor = "auto";        // auto: when Java and the jar are found | on: required | off
  std::string meteor_jar;             // default: $VIMO_METEOR_JAR, else pycocoevalcap's copy in the venv
  std::string corenlp_jar;            // default: $VIMO_CORENLP_JAR, else pycocoevalcap's copy in the venv
};

struct CaptionScores {
  std::array<double, 4> bleu{};
  double rouge_l = 0, cider_d = 0;
  std::optional<double> meteor;
  std::string meteor_note;  // why METEOR is missing, when it is
  std::string tokenizer;    // what tokenized the captions
  size_t sets = 0;
};

// Tokenizes references and hypotheses (each list in set order) and scores them.
CaptionScores caption_scores(const std::vector<CaptionSet>& sets, const CaptionOptions& o = {});

// METEOR 1.5 on tokenized sets, exactly as pycocoevalcap's Meteor talks to the jar
// (java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm). Throws vimo::Error when the jar or
// Java cannot be found or run.
double meteor(const std::vector<TokenizedSet>& sets, const std::string& jar);

// Where a jar is: `explicit_path`, else the environment variable `env`, else `relative` under the
// pycocoevalcap package of the vimo venv ($VIMO_VENV or ~/.cache/vimo/venv). Empty when not found.
std::string find_pycocoevalcap_jar(const std::string& explicit_path, const char* env, const std::string& relative);

}  // namespace vimo::eval

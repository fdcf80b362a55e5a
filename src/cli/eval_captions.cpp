// `vimo eval captions --refs R --hyps H`: BLEU-1..4, ROUGE-L, CIDEr-D and METEOR as pycocoevalcap
// computes them; `vimo eval ptb-tokenize --input captions.json`: the tokenization alone.
#include <cstdio>
#include <iostream>

#include "command.h"
#include "vimo/core/fs.h"
#include "vimo/eval/captions.h"
#include "vimo/eval/ptb_tokenizer.h"

namespace vimo::cli {
namespace {

struct CaptionArgs {
  std::string refs, hyps, out, tokenizer = "builtin", meteor = "auto", meteor_jar, corenlp_jar;
};

std::string default_out(const std::string& hyps) {
  const auto dot = hyps.rfind(".json");
  return (dot != std::string::npos && dot + 5 == hyps.size() ? hyps.substr(0, dot) : hyps) + ".scores.json";
}

void add_tokenizer_options(CLI::App* c, CaptionArgs& a) {
  c->add_option("--tokenizer", a.tokenizer, "builtin (vimo's PTB transcription) | stanford (the CoreNLP 3.4.1 jar)")
      ->check(CLI::IsMember({"builtin", "stanford"}));
  c->add_option("--corenlp-jar", a.corenlp_jar,
                "stanford-corenlp-3.4.1.jar (default: $VIMO_CORENLP_JAR or the venv's)");
}

Registrar reg(70, [](CLI::App& app) {
  auto* g = group(app, "eval", "evaluation metrics and protocols");
  auto a = std::make_shared<CaptionArgs>();
  auto* c = g->add_subcommand("captions", "BLEU-1..4, ROUGE-L, CIDEr-D, METEOR of hypotheses against references");
  c->add_option("--refs", a->refs, "JSON object: id -> list of reference captions")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--hyps", a->hyps, "JSON object: id -> generated caption")->required()->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "JSON output (default: <hyps without .json>.scores.json)");
  add_tokenizer_options(c, *a);
  c->add_option("--meteor", a->meteor, "auto (when java and the jar are found) | on (required) | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  c->add_option("--meteor-jar", a->meteor_jar, "meteor-1.5.jar (default: $VIMO_METEOR_JAR or the venv's)");
  c->callback([a] {
    const auto sets = eval::load_caption_sets(a->refs, a->hyps);
    eval::CaptionOptions o;
    o.tokenizer = a->tokenizer, o.meteor = a->meteor, o.meteor_jar = a->meteor_jar, o.corenlp_jar = a->corenlp_jar;
    const auto s = eval::caption_scores(sets, o);
    nlohmann::ordered_json j;
    for (int k = 0; k < 4; ++k) j["bleu_" + std::to_string(k + 1)] = s.bleu[k];
    j["rouge_l"] = s.rouge_l;
    j["cider_d"] = s.cider_d;
    j["meteor"] = s.meteor ? nlohmann::ordered_json(*s.meteor) : nlohmann::ordered_json(nullptr);
    if (!s.meteor_note.empty()) j["meteor_note"] = s.meteor_note;
    j["sets"] = s.sets;
    j["tokenizer"] = s.tokenizer;
    j["refs"] = a->refs;
    j["hyps"] = a->hyps;
    const std::string out = a->out.empty() ? default_out(a->hyps) : a->out;
    core::write_file_atomic(out, j.dump(2) + "\n");
    for (int k = 0; k < 4; ++k) std::printf("BLEU-%d   %.6f\n", k + 1, s.bleu[k]);
    std::printf("ROUGE-L  %.6f\nCIDEr-D  %.6f\n", s.rouge_l, s.cider_d);
    if (s.meteor) std::printf("METEOR   %.6f\n", *s.meteor);
    if (!s.meteor_note.empty()) std::fprintf(stderr, "%s\n", s.meteor_note.c_str());
    std::printf("%zu caption sets; wrote %s\n", s.sets, out.c_str());
  });

  auto t = std::make_shared<CaptionArgs>();
  auto* tc = g->add_subcommand("ptb-tokenize", "captions (JSON list of strings) as pycocoevalcap tokenizes them");
  tc->add_option("--input", t->refs, "JSON list of caption strings")->required()->check(CLI::ExistingFile);
  add_tokenizer_options(tc, *t);
  tc->callback([t] {
    const auto j = nlohmann::json::parse(core::read_file(t->refs));
    VIMO_CHECK(j.is_array(), "ptb-tokenize: '" + t->refs + "' must hold a JSON list of strings");
    const auto captions = j.get<std::vector<std::string>>();
    std::vector<std::string> out;
    if (t->tokenizer == "stanford") {
      const auto jar =
          eval::find_pycocoevalcap_jar(t->corenlp_jar, "VIMO_CORENLP_JAR", "tokenizer/stanford-corenlp-3.4.1.jar");
      VIMO_CHECK(!jar.empty(), "ptb-tokenize: stanford-corenlp-3.4.1.jar not found; pass --corenlp-jar");
      out = eval::coco_tokenize_stanford(captions, jar);
    } else {
      out = eval::coco_tokenize(captions);
    }
    std::cout << nlohmann::json(out).dump(1) << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli

// `vimo eval train-evaluator` (the text-motion evaluator), `vimo eval embed` (its embeddings of given
// model inputs or captions) and `vimo eval evaluator` (its ground-truth row and shuffled control on a split).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/schemas.h"
#include "vimo/core/tensor_io.h"
#include "vimo/eval/protocols.h"
#include "vimo/train/recipes/evaluator.h"
#include "vimo/train/recipes/tokenizer.h"

namespace fs = std::filesystem;

namespace vimo::cli {
namespace {

core::SchemaRegistrar<train::EvaluatorConfig> schema("eval");  // configs/eval/

struct EmbedArgs {
  std::string evaluator, clip_vocab, motion, lengths, out_motion, text_ids, captions, out_text;
};

struct GtArgs {
  std::string evaluator, data, split = "test", protocol = "intergen", out, clip_vocab;
  int64_t replications = 20, seed = 0, batch_size = 0;
};

Registrar reg(72, [](CLI::App& app) {
  auto* g = group(app, "eval", "evaluation metrics and protocols");
  auto opts = std::make_shared<ConfigOptions>();
  auto* t = g->add_subcommand("train-evaluator", "train the text-motion evaluator on a packed dataset; rerun to resume");
  add_config_options(t, *opts);
  t->callback([opts] {
    std::string yaml;
    auto cfg = train::resolve_for_run<train::EvaluatorConfig>(opts->files, opts->overrides, &yaml);
    if (opts->dump) {
      std::fputs(yaml.c_str(), stdout);
      return;
    }
    train::train_evaluator(cfg, yaml);
  });

  auto e = std::make_shared<EmbedArgs>();
  auto* m = g->add_subcommand("embed", "evaluator embeddings [N, 512] of motion inputs or of captions (.npy)");
  m->add_option("--evaluator", e->evaluator, "evaluator run, checkpoint or converted .safetensors")->required();
  m->add_option("--clip-vocab", e->clip_vocab, "CLIP's bpe_simple_vocab_16e6.txt.gz for a clip_bpe evaluator");
  m->add_option("--motion", e->motion, "model input [N, T, 2F] float32 (.npy), used as is")->check(CLI::ExistingFile);
  m->add_option("--lengths", e->lengths, "frames of each motion [N] int64 (.npy); default T")->check(CLI::ExistingFile);
  m->add_option("--out-motion", e->out_motion, "motion embeddings [N, D] (.npy)");
  m->add_option("--text-ids", e->text_ids, "token ids [N, text_context] int64 (.npy)")->check(CLI::ExistingFile);
  m->add_option("--captions", e->captions, "captions: a JSON list of strings")->check(CLI::ExistingFile);
  m->add_option("--out-text", e->out_text, "text embeddings [N, D] (.npy)");
  m->callback([e] {
    VIMO_CHECK(!e->motion.empty() || !e->text_ids.empty() || !e->captions.empty(),
               "nothing to embed: give --motion, --text-ids or --captions");
    VIMO_CHECK(e->text_ids.empty() || e->captions.empty(), "give --text-ids or --captions, not both");
    auto ev = eval::load_evaluator(e->evaluator, e->clip_vocab);
    if (!e->motion.empty()) {
      VIMO_CHECK(!e->out_motion.empty(), "--motion needs --out-motion FILE.npy");
      auto x = core::load_npy(e->motion).to(torch::kFloat);
      VIMO_CHECK(x.dim() == 3, "'" + e->motion + "' has shape " + c10::str(x.sizes()) + "; expected [N, T, 2F]");
      VIMO_CHECK(torch::isfinite(x).all().item<bool>(), "'" + e->motion + "' holds NaN or Inf");
      auto len = e->lengths.empty() ? torch::full({x.size(0)}, x.size(1), torch::kLong)
                                    : core::load_npy(e->lengths).to(torch::kLong);
      VIMO_CHECK(len.dim() == 1 && len.size(0) == x.size(0) && len.min().item<int64_t>() >= 1 &&
                     len.max().item<int64_t>() <= x.size(1),
                 "'" + e->lengths + "' must hold " + std::to_string(x.size(0)) + " lengths in [1, " +
                     std::to_string(x.size(1)) + "]");
      torch::NoGradGuard ng;
      core::save_npy(e->out_motion, ev.model->encode_motion(x, len).contiguous());
    }
    if (!e->text_ids.empty() || !e->captions.empty()) {
      VIMO_CHECK(!e->out_text.empty(), "--text-ids/--captions need --out-text FILE.npy");
      torch::Tensor ids;
      if (!e->text_ids.empty()) {
        ids = core::load_npy(e->text_ids).to(torch::kLong);
      } else {
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(core::read_file(e->captions));
        } catch (const std::exception& ex) {
          throw Error("'" + e->captions + "' is not JSON (" + ex.what() + "); expected a list of strings");
        }
        VIMO_CHECK(j.is_array(), "'" + e->captions + "' must be a JSON list of strings");
        std::vector<std::string> caps;
        for (size_t i = 0; i < j.size(); ++i) {
          VIMO_CHECK(j[i].is_string(), "'" + e->captions + "': item " + std::to_string(i) + " is not a string");
          caps.push_back(j[i].get<std::string>());
        }
        ids = ev.tokenize(caps);
      }
      core::save_npy(e->out_text, eval::embed_ids(ev.model, ids, ev.eot).contiguous());
    }
  });

  auto a = std::make_shared<GtArgs>();
  auto* gt = g->add_subcommand("evaluator", "an evaluator's ground-truth row and shuffled-caption control on a split");
  gt->add_option("--evaluator", a->evaluator, "evaluator run, checkpoint or converted .safetensors")->required();
  gt->add_option("--data", a->data, "packed dataset directory (default: the one the evaluator was trained on)");
  gt->add_option("--split", a->split, "train | val | test");
  gt->add_option("--protocol", a->protocol, "intergen | intermask | intermask-interx (docs/eval.md)");
  gt->add_option("--replications", a->replications, "replications (InterGen: 20)")->check(CLI::Range(1, 1000));
  gt->add_option("--batch-size", a->batch_size, "override the protocol's R-precision pool")->check(CLI::Range(0, 100000));
  gt->add_option("--seed", a->seed, "seed of the caption draws and batches");
  gt->add_option("--clip-vocab", a->clip_vocab, "CLIP's bpe_simple_vocab_16e6.txt.gz for a clip_bpe evaluator");
  gt->add_option("--out", a->out, "JSON written here (default: <evaluator run>/eval/evaluator_<split>.json)");
  gt->callback([a] {
    auto ev = eval::load_evaluator(a->evaluator, a->clip_vocab);
    const std::string data = a->data.empty() ? ev.packed_dir() : a->data;
    VIMO_CHECK(!data.empty(), "evaluator '" + ev.path + "' names no dataset; pass --data packed/DIR");
    auto ds = train::open_packed_split(data, a->split);
    auto p = eval::metric_protocol(a->protocol);
    if (a->batch_size > 0) p.batch_size = a->batch_size;
    auto split = eval::load_captioned_split(ds, ev);
    auto j = eval::evaluate_ground_truth(ev, split, a->split, p, a->replications, a->seed);
    std::string out = a->out;
    if (out.empty()) {
      fs::path run = fs::is_directory(a->evaluator) ? fs::path(a->evaluator) : fs::path(ev.path).parent_path();
      fs::create_directories(run / "eval");
      out = (run / "eval" / ("evaluator_" + a->split + ".json")).string();
    }
    core::write_file_atomic(out, j.dump(2) + "\n");
    fs::path md(out);
    md.replace_extension(".md");
    const std::string table = eval::protocol_markdown(j);
    core::write_file_atomic(md.string(), table);
    std::cout << table << "written: " << out << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli

// `vimo tokenizer eval --run DIR [--split test]` (also `vimo eval tokenizer`): reconstruction and
// codebook metrics of a run.
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/tokenizer/tokenizer.h"
#include "vimo/train/recipes/tokenizer.h"

namespace vimo::cli {
namespace {

struct EvalArgs {
  std::string run, split = "test", packed, out, device = "auto";
};

void add_eval(CLI::App* g, const std::string& name) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = g->add_subcommand(name, "stage 1: MPJPE, PA-MPJPE, per-group error, codebook usage/perplexity, MPJPE per layer count");
  c->add_option("--run", a->run, "tokenizer run directory")->required();
  c->add_option("--split", a->split, "split of the packed dataset (train, val, test)");
  c->add_option("--data", a->packed, "packed dataset directory (default: the run's data.packed)");
  c->add_option("--out", a->out, "JSON output (default: <run>/eval_<split>.json)");
  c->add_option("--device", a->device, "auto | cpu | cuda[:N]");
  c->callback([a] {
    const auto dev = core::resolve_device(a->device);
    auto tok = tokenizer::MotionTokenizer::load(a->run, dev);
    const std::string packed = a->packed.empty() ? tok.trained_on() : a->packed;
    VIMO_CHECK(!packed.empty(), "tokenizer run '" + a->run + "' does not name its dataset; pass --data DIR");
    auto r = train::evaluate_tokenizer(tok.model(), train::split_clips(train::open_packed_split(packed, a->split)), dev);
    auto j = r.to_json();
    j["run"] = a->run;
    j["checkpoint"] = tok.checkpoint();
    j["split"] = a->split;
    j["data"] = packed;
    const std::string out = a->out.empty() ? a->run + "/eval_" + a->split + ".json" : a->out;
    core::write_file_atomic(out, j.dump(2) + "\n");
    std::cout << r.table() << "\nwrote " << out << "\n";
  });
}

// The same command in the tokenizer's group and in the evaluation group.
Registrar reg(41, [](CLI::App& app) {
  add_eval(group(app, "tokenizer", "stage 1: the RQ-VAE motion tokenizer (train, eval, encode, decode)"), "eval");
  add_eval(group(app, "eval", "evaluation metrics and protocols"), "tokenizer");
});

}  // namespace
}  // namespace vimo::cli

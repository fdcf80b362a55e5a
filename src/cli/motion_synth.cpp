// `vimo data synth --out DIR --clips N --seed S`: writes the synthetic two-person dataset in
// InterHuman's layout (motions_processed/, annots/, split/), ready for `vimo data prepare`.
#include <cstdio>

#include "command.h"
#include "vimo/core/log.h"
#include "vimo/motion/synth.h"

namespace vimo::cli {
namespace {

Registrar reg(30, [](CLI::App& app) {
  auto* g = group(app, "data", "datasets: synthesize, prepare and inspect");
  auto o = std::make_shared<motion::SynthOptions>();
  auto* c = g->add_subcommand("synth", "write synthetic two-person interactions in InterHuman's layout");
  c->add_option("--out", o->out, "dataset root to write (created if absent)")->required();
  c->add_option("--clips", o->clips, "number of clips")->default_val(2000)->check(CLI::Range(1, 10000000));
  c->add_option("--seed", o->seed, "random seed; the same seed writes the same dataset")->default_val(0);
  c->add_option("--val-fraction", o->val_fraction, "share of clips in split/val.txt")->default_val(0.05);
  c->add_option("--test-fraction", o->test_fraction, "share of clips in split/test.txt")->default_val(0.15);
  c->add_option("--threads", o->threads, "worker threads (0: all cores)")->default_val(0);
  c->callback([o] {
    auto r = motion::write_synth_dataset(*o);
    std::string types;
    for (int t = 0; t < motion::kNumSynthTypes; ++t)
      types += std::string(t ? ", " : "") + motion::synth_type_name(static_cast<motion::SynthType>(t)) + " " +
               std::to_string(r.per_type[static_cast<size_t>(t)]);
    log::info("wrote ", r.clips, " clips (", r.frames, " frames) to ", o->out, " in ", r.seconds, " s");
    log::info("types: ", types);
  });
});

}  // namespace
}  // namespace vimo::cli

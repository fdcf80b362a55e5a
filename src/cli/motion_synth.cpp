// `vimo data synth --out DIR --clips N --seed S`: writes the synthetic two-person dataset in
// InterHuman's layout (motions_processed/, annots/, split/), ready for `vimo data prepare`; and
// `vimo data synth-group --out DIR --count N --persons P`: group scenes as [T, P, 262] .npy + .json.
#include <cstdio>

#include "command.h"
#include "vimo/core/log.h"
#include "vimo/motion/synth.h"
#include "vimo/motion/synth_group.h"

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
  struct GroupArgs {
    std::string out;
    int64_t count = 24;
    int persons = 3;
    uint64_t seed = 7;
  };
  auto ga = std::make_shared<GroupArgs>();
  auto* gc = g->add_subcommand("synth-group", "write synthetic group scenes of 3+ people (greetings, circle dances): "
                                              "<id>.npy [T, N, 262] and <id>.json (captions, pairs, contacts)");
  gc->add_option("--out", ga->out, "directory to write (created if absent)")->required();
  gc->add_option("--count", ga->count, "number of scenes")->check(CLI::Range(1, 1000000));
  gc->add_option("--persons", ga->persons, "people per scene (3..8)");
  gc->add_option("--seed", ga->seed, "random seed (`vimo eval group` scores scenes of --scene-seed 7 by default)");
  gc->callback([ga] {
    motion::write_group_set(ga->out, ga->count, ga->persons, ga->seed);
    log::info("wrote ", ga->count, " group scenes of ", ga->persons, " persons to ", ga->out);
  });
});

}  // namespace
}  // namespace vimo::cli

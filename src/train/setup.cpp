// The shared recipe set-up (train/setup.h).
#include "vimo/train/setup.h"

namespace vimo::train {

torch::Device setup_run(const core::RunSection& run, const std::string& yaml) {
  const auto dev = core::resolve_device(run.device);
  core::apply_threads(run.threads);
  core::seed_all(run.seed);
  core::open_run_dir(run.dir, yaml);
  return dev;
}

TrainerOptions trainer_options(const core::RunSection& run, const TrainSection& train, const OptimSection& optim,
                               torch::Device device, const std::string& tag) {
  TrainerOptions o;
  o.run_dir = run.dir;
  o.keep_last = run.keep_last;
  o.resume = run.resume;
  o.device = device;
  o.train = train;
  o.optim = optim;
  o.tag = tag;
  return o;
}

}  // namespace vimo::train

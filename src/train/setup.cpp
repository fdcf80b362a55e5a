// The shared recipe set-up (train/setup.h).
#include "vimo/train/setup.h"

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/log_setup.h"

namespace vimo::train {

torch::Device setup_run(const core::RunSection& run, const DistSection& dist, const std::string& yaml) {
  core::apply_log_level(run.log_level);
  log::set_all_ranks(dist.log_all_ranks);
  const auto env = launch_env();
  auto dev = core::resolve_device(run.device);
  if (env.world_size > 1 && dev.is_cuda() && (run.device == "auto" || run.device == "cuda")) {
    const int n = static_cast<int>(torch::cuda::device_count());
    if (env.local_rank >= n)
      throw Error("LOCAL_RANK=" + std::to_string(env.local_rank) + " but this node has " + std::to_string(n) +
                  " CUDA device(s); start at most that many processes per node");
    dev = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  core::apply_threads(run.threads);
  core::seed_all(run.seed);
  init_distributed(dist, env, dev);
  core::open_run_dir(run.dir, yaml);
  if (env.world_size > 1)
    log::info("distributed: rank ", env.rank, " of ", env.world_size, " (local ", env.local_rank, ", ", env.source,
              "), ", backend_name(dist, dev), " over ",
              env.master_addr, ":", env.master_port, ", device ", dev.str());
  return dev;
}

TrainerOptions trainer_options(const core::RunSection& run, const TrainSection& train, const OptimSection& optim,
                               const DistSection& dist, torch::Device device, const std::string& tag) {
  TrainerOptions o;
  o.run_dir = run.dir;
  o.keep_last = run.keep_last;
  o.resume = run.resume;
  o.device = device;
  o.train = train;
  o.optim = optim;
  o.dist = dist;
  o.tag = tag;
  return o;
}

}  // namespace vimo::train

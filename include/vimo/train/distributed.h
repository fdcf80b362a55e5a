// Data-parallel training over PyTorch's c10d: the launch environment (torchrun's or Slurm's
// variables), the TCPStore rendezvous and a Gloo (CPU) or NCCL (CUDA) process group behind
// core::ProcessGroup. A process started without those variables stays a single-process run.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "vimo/core/config.h"
#include "vimo/core/process_group.h"

namespace vimo::train {

using ProcessGroup = core::ProcessGroup;

// `dist` config section.
struct DistSection {
  std::string backend = "auto";
  double timeout_s = 300;
  double bucket_mb = 25;
  bool overlap = true;
  bool log_all_ranks = false;
  bool shard_optimizer = false;
  int64_t bucket_bytes() const { return static_cast<int64_t>(bucket_mb * 1024 * 1024); }
  template <class V> void visit(V& v) {
    v.key("backend", backend, "auto (nccl on CUDA, else gloo) | gloo | nccl; used only when launched on several processes",
          core::opt().one_of({"auto", "gloo", "nccl"}));
    v.key("timeout_s", timeout_s,
          "seconds a rendezvous or collective waits for the other ranks before the run stops with an error",
          core::opt().min(1));
    v.key("bucket_mb", bucket_mb,
          "gradients are summed over ranks in flat buckets of about this many MiB (0: one bucket per parameter)",
          core::opt().min(0).max(4096));
    v.key("overlap", overlap,
          "start each bucket's sum from autograd hooks as soon as its gradients are complete, while the backward "
          "pass goes on (false: every bucket after backward)");
    v.key("shard_optimizer", shard_optimizer,
          "ZeRO-1: each rank keeps the AdamW state of its share of the parameters and updates only those, "
          "then sends them to the others (checkpoints resume on any number of ranks)");
    v.key("log_all_ranks", log_all_ranks,
          "every rank's log lines on the console (default: rank 0's, and the warnings and errors of all ranks)");
  }
};

// Where this process sits in a multi-process launch.
struct LaunchEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;    // torchrun's agent already serves the TCPStore on master_port
  std::string source = "none";  // "torchrun" | "slurm" | "none"
};

// Reads RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT (torchrun), else SLURM_PROCID/
// SLURM_NTASKS/SLURM_LOCALID/SLURM_JOB_NODELIST (+ MASTER_PORT); a bad value is a named error.
LaunchEnv launch_env();
// The first host of a Slurm node list: "gpu[03-05,9],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

// dist.backend with `auto` resolved for `device` (nccl on CUDA, else gloo).
std::string backend_name(const DistSection& d, const torch::Device& device);

// When the launch has more than one process: rendezvous, creates the c10d group on `device` (Gloo for
// CPU, NCCL for CUDA unless dist.backend says otherwise), installs it as core::process_group() and
// the log's rank prefix. A single process keeps the default group. Returns the group in effect.
std::shared_ptr<core::ProcessGroup> init_distributed(const DistSection& d, const LaunchEnv& env,
                                                     const torch::Device& device);

}  // namespace vimo::train

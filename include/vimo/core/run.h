// The `run` config section shared by every command, device/thread/seed setup, the run directory,
// and SIGINT/SIGTERM handling (save, then exit with kExitInterrupted).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "vimo/core/config.h"

namespace vimo::core {

struct RunSection {
  std::string dir = "runs/default";
  std::string device = "auto";
  int threads = 0;
  int64_t seed = 1234;
  bool resume = true;
  int keep_last = 3;
  std::string log_level = "info";
  template <class V> void visit(V& v) {
    v.key("dir", dir, "run directory: config.yaml, log.txt, metrics, checkpoints");
    v.key("device", device, "auto | cpu | cuda | cuda:N");
    v.key("threads", threads, "intra-op CPU threads; 0 = number of cores", opt().min(0).max(4096));
    v.key("seed", seed, "random seed for weights, data order and sampling", opt().min(0));
    v.key("resume", resume, "resume from the run's latest complete checkpoint; false starts over");
    v.key("keep_last", keep_last, "checkpoints kept (older ones are deleted); 0 keeps all", opt().min(0));
    v.key("log_level", log_level, "debug | info | warn | error", opt().one_of({"debug", "info", "warn", "error"}));
  }
};

// "auto" picks cuda when usable; "cuda" without a usable GPU is an error naming run.device.
torch::Device resolve_device(const std::string& spec);
// Sets intra-op threads (0 = cores); returns the count in effect.
int apply_threads(int threads);
// Keeps freed tensor memory in the process heap (glibc malloc: fixed 32 MiB mmap threshold, no
// trimming), so the same activation buffers are reused every step instead of being unmapped and
// page-faulted in again (measured: +12% forward+backward tokens/s on the LM bench). Called by
// apply_threads; idempotent. Set VIMO_MALLOC_TUNING=0 to keep glibc's defaults.
void tune_cpu_allocator();
void seed_all(int64_t seed);
void apply_log_level(const std::string& level);
// Version, LibTorch, CUDA/cuDNN, devices, BLAS, threads: for `vimo --version`.
std::string runtime_report();
std::string blas_name();

// Creates the run directory (checking it is writable), opens log.txt and writes config.yaml.
void open_run_dir(const std::string& dir, const std::string& resolved_config_yaml);

void install_stop_handlers();
bool stop_requested();
int stop_signal();
void request_stop_for_test(int sig);

}  // namespace vimo::core

// Device, threads, seeds, run directory setup and stop signals.
#include "vimo/core/run.h"

#include "vimo/core/process_group.h"

#include <malloc.h>

#include <cstdlib>
#include <limits>

#include <ATen/Parallel.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <thread>

#include "vimo/core/fs.h"
#include "vimo/core/log.h"

namespace fs = std::filesystem;

namespace vimo::core {

torch::Device resolve_device(const std::string& spec) {
  if (spec == "cpu") return torch::kCPU;
  if (spec == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("run.device=" + spec + " but no CUDA device is usable here; use run.device=cpu or auto");
    int idx = 0;
    if (spec.size() > 4) {
      if (spec[4] != ':') throw Error("run.device='" + spec + "' is not auto, cpu, cuda or cuda:N");
      try {
        idx = std::stoi(spec.substr(5));
      } catch (...) {
        throw Error("run.device='" + spec + "': the device index must be a number (cuda:0)");
      }
    }
    const int n = static_cast<int>(torch::cuda::device_count());
    if (idx < 0 || idx >= n)
      throw Error("run.device=" + spec + " but only " + std::to_string(n) + " CUDA device(s) exist");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(idx));
  }
  throw Error("run.device='" + spec + "' is not auto, cpu, cuda or cuda:N");
}

void tune_cpu_allocator() {
  static const bool done = [] {
    const char* env = std::getenv("VIMO_MALLOC_TUNING");
    if (env && std::string(env) == "0") return false;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc allows; also stops its dynamic adjustment
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
    mallopt(M_TOP_PAD, 64 << 20);
    return true;
  }();
  (void)done;
}

int apply_threads(int threads) {
  tune_cpu_allocator();
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return at::get_num_threads();
}

void seed_all(int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(static_cast<uint64_t>(seed));
}

void apply_log_level(const std::string& level) {
  if (level == "debug") log::set_level(log::Level::kDebug);
  else if (level == "warn") log::set_level(log::Level::kWarn);
  else if (level == "error") log::set_level(log::Level::kError);
  else log::set_level(log::Level::kInfo);
}

std::string blas_name() {
  const std::string cfg = at::show_config();
  for (const char* name : {"mkl", "MKL", "OpenBLAS", "openblas", "BLIS", "Accelerate"}) {
    const auto pos = cfg.find(std::string("BLAS_INFO=") + name);
    if (pos != std::string::npos) {
      const auto end = cfg.find_first_of(",\n", pos);
      return cfg.substr(pos + 10, end - pos - 10);
    }
  }
  if (cfg.find("Use MKL") != std::string::npos || cfg.find("MKL") != std::string::npos) return "mkl";
  return "unknown";
}

std::string runtime_report() {
  std::ostringstream s;
  s << "vimo " << VIMO_VERSION << "\n";
  s << "libtorch " << TORCH_VERSION << "\n";
  const bool cuda = torch::cuda::is_available();
  const std::string cfg = at::show_config();
  const bool built = cfg.find("USE_CUDA=ON") != std::string::npos || cfg.find("CUDA Runtime") != std::string::npos;
  s << "cuda: " << (cuda ? "usable" : "not usable (no GPU or driver visible)") << "; libtorch built with CUDA: "
    << (built ? "yes" : "no") << "\n";
  s << "cudnn: " << (torch::cuda::cudnn_is_available() ? "usable" : "not usable") << "\n";
  if (cuda) {
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) s << "device cuda:" << i << "\n";
  }
  s << "blas: " << blas_name() << "\n";
  s << "threads: " << at::get_num_threads() << " intra-op (cores: " << std::thread::hardware_concurrency() << ")\n";
  return s.str();
}

namespace {
// log.txt for rank 0, log.rank<r>.txt for the other ranks of a multi-rank run.
std::string log_file_name(int rank) { return rank == 0 ? "log.txt" : "log.rank" + std::to_string(rank) + ".txt"; }
}  // namespace

void open_run_dir(const std::string& dir, const std::string& resolved_config_yaml) {
  ensure_writable_dir(dir);
  const auto& pg = process_group();
  log::open_file((fs::path(dir) / log_file_name(pg.rank())).string());
  if (pg.is_main()) write_file_atomic((fs::path(dir) / "config.yaml").string(), resolved_config_yaml);
}

namespace {
std::atomic<int> g_signal{0};
extern "C" void on_stop_signal(int sig) {
  if (g_signal.load() != 0) {
    // Second signal: the user insists; leave now.
    std::_Exit(128 + sig);
  }
  g_signal.store(sig);
}
}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}
bool stop_requested() { return g_signal.load() != 0; }
int stop_signal() { return g_signal.load(); }
void request_stop_for_test(int sig) { g_signal.store(sig); }

}  // namespace vimo::core

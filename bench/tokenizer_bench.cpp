// Training steps/s of vimo's RQ-VAE against the PyTorch reference (bench/tokenizer_bench.py) with
// the same architecture, batch, window and threads, measured in one run; the ratio is printed last.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <string>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

#include "vimo/core/run.h"
#include "vimo/data/packed.h"
#include "vimo/train/recipes/tokenizer.h"

using namespace vimo;

int main(int argc, char** argv) {
  // Usage: VIMO_PYTHON=<venv>/bin/python tokenizer_bench [threads=2] [batch=32] [width=128] [steps=20] [device=cpu] [precision=fp32]
  const int threads = argc > 1 ? std::stoi(argv[1]) : 2;
  const int64_t batch = argc > 2 ? std::stoll(argv[2]) : 32;
  const int64_t width = argc > 3 ? std::stoll(argv[3]) : 128;
  const int steps = argc > 4 ? std::stoi(argv[4]) : 20;
  const std::string device = argc > 5 ? argv[5] : "cpu";
  const std::string precision = argc > 6 ? argv[6] : "fp32";
  at::set_num_threads(threads);
  torch::manual_seed(0);
  train::TokenizerConfig c;
  c.run.seed = 0;
  c.model.width = width;
  c.model.code_dim = width;
  c.model.codebook_size = 512;
  c.model.num_quantizers = 6;
  c.data.loader.window = 64;
  c.data.loader.batch_size = static_cast<int>(batch);
  const auto dev = core::resolve_device(device);
  // 16 random two-person clips of 128 frames, packed as stage 1 reads them.
  const auto packed = (std::filesystem::temp_directory_path() / "vimo_tokenizer_bench.h5").string();
  std::vector<motion::Clip> clips;
  for (int i = 0; i < 16; ++i) clips.push_back({"c" + std::to_string(i), torch::randn({128, 2, 262}), {}});
  data::write_packed(packed, clips);
  auto ds = data::PackedDataset::open(packed);
  auto model = train::make_tokenizer_model(c, data::Normalizer(torch::zeros({262}), torch::ones({262})), ds);
  model->to(dev);
  auto task = train::make_tokenizer_task(c, model, ds, {}, dev);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(2e-4));
  const bool bf16 = precision == "bf16" && dev.is_cuda();
  auto step = [&] {
    if (bf16) {
      at::autocast::set_autocast_enabled(at::kCUDA, true);
      at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    }
    auto out = task->forward(0);
    if (bf16) {
      at::autocast::set_autocast_enabled(at::kCUDA, false);
      at::autocast::clear_cache();
    }
    opt.zero_grad();
    out.loss.backward();
    torch::nn::utils::clip_grad_norm_(model->parameters(), 1.0);
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  if (dev.is_cuda()) torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  if (dev.is_cuda()) torch::cuda::synchronize();
  const double vimo_sps = steps / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("vimo    %.3f steps/s  %.1f samples/s  (threads %d, batch %lld, width %lld, window 64, %s %s)\n",
              vimo_sps, vimo_sps * batch, threads, static_cast<long long>(batch), static_cast<long long>(width),
              device.c_str(), precision.c_str());
  std::fflush(stdout);

  // The reference script sits beside this file; the interpreter is $VIMO_PYTHON (the venv with torch).
  const char* py = std::getenv("VIMO_PYTHON");
  const std::string script = std::filesystem::path(VIMO_SOURCE_DIR) / "bench" / "tokenizer_bench.py";
  const std::string cmd = std::string(py ? py : "python3") + " " + script +
                          " --threads " + std::to_string(threads) + " --batch " + std::to_string(batch) +
                          " --width " + std::to_string(width) + " --steps " + std::to_string(steps) + " --device " +
                          device + " --precision " + precision;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return 1;
  char line[512];
  double py_sps = 0;
  while (std::fgets(line, sizeof line, p)) {
    std::fputs(line, stdout);
    std::sscanf(line, "python %lf", &py_sps);
  }
  if (pclose(p) != 0 || py_sps <= 0) {
    std::fprintf(stderr, "the Python reference failed: %s\n", cmd.c_str());
    return 1;
  }
  std::printf("ratio vimo/python %.3f\n", vimo_sps / py_sps);
  return 0;
}

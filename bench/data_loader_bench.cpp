// Loader throughput: stage-1 windows (batch 256 x 64 frames) from a packed split, against an
// h5py + numpy loader doing the same work in the same run, and against stage 1's consumption,
// measured in the same run: training steps/s of the RQ-VAE of a tokenizer config (default
// configs/tokenizer/demo.yaml) on this machine, times its batch size.
// Usage: data_loader_bench [--data train.h5 --stats stats.safetensors] [--seconds 3] [--python PY]
//                          [--tokenizer-config YAML]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>

#include "vimo/data/loader.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/packed.h"
#include "vimo/train/recipes/tokenizer.h"

namespace fs = std::filesystem;
using namespace vimo;

namespace {

constexpr int kBatch = 256, kWindow = 64;

// Windows/s that stage 1 trains on with `config_path` here: optimizer steps of its RQ-VAE (forward,
// losses, backward, AdamW) on windows of `ds` drawn by its own loader, after two warm-up steps.
double stage1_windows_per_second(const std::string& config_path, const data::PackedDataset& ds, double seconds) {
  auto c = core::resolve_config<train::TokenizerConfig>(core::ConfigSource::from_files({config_path}));
  core::apply_threads(c.run.threads);
  auto model = train::make_tokenizer_model(c, data::Normalizer(torch::zeros({262}), torch::ones({262})), ds);
  auto task = train::make_tokenizer_task(c, model, ds, {}, torch::kCPU);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(c.optim.lr));
  auto step = [&](int64_t s) {
    opt.zero_grad();
    task->forward(s).loss.backward();
    opt.step();
  };
  step(0);
  step(1);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t steps = 0;
  double el = 0;
  while ((el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) < seconds) step(2 + steps++);
  std::printf("stage 1 (%s: width %lld, batch %lld x %lld frames, %d threads): %.1f steps/s\n", config_path.c_str(),
              static_cast<long long>(c.model.width), static_cast<long long>(c.data.loader.batch_size),
              static_cast<long long>(c.data.loader.window), at::get_num_threads(), steps / el);
  return steps / el * static_cast<double>(c.data.loader.batch_size);
}

double run_loader(const data::PackedDataset& ds, const data::Normalizer& n, int workers, double seconds) {
  data::WindowLoaderOptions o;
  o.batch_size = kBatch;
  o.window = kWindow;
  o.workers = workers;
  o.prefetch = 8;
  data::WindowLoader l(ds, n, o);
  l.next();  // warm-up: thread start
  const auto t0 = std::chrono::steady_clock::now();
  int64_t batches = 0;
  double el = 0;
  while ((el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) < seconds) {
    auto b = l.next();
    ++batches;
  }
  return batches * kBatch / el;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_path, stats_path, python = "python3";
  std::string tok_config = (fs::path(VIMO_SOURCE_DIR) / "configs/tokenizer/demo.yaml").string();
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--data")
      data_path = argv[i + 1];
    else if (k == "--stats")
      stats_path = argv[i + 1];
    else if (k == "--seconds")
      seconds = std::stod(argv[i + 1]);
    else if (k == "--python")
      python = argv[i + 1];
    else if (k == "--tokenizer-config")
      tok_config = argv[i + 1];
  }
  const fs::path tmp = fs::temp_directory_path() / "vimo_data_loader_bench";
  try {
    if (data_path.empty()) {
      // 600 two-person clips of 60..300 frames (about 108k frames, 226 MB), like the synthetic set.
      fs::create_directories(tmp);
      data_path = (tmp / "train.h5").string();
      if (!fs::exists(data_path)) {
        std::mt19937 rng(1);
        std::vector<motion::Clip> clips;
        for (int i = 0; i < 600; ++i)
          clips.push_back(
              {"c" + std::to_string(i), torch::randn({60 + static_cast<int64_t>(rng() % 241), 2, 262}), {}});
        data::write_packed(data_path, clips);
      }
    }
    auto ds = data::PackedDataset::open(data_path);
    auto norm = stats_path.empty() ? data::Normalizer(torch::zeros({262}), torch::full({262}, 2.f))
                                   : data::Normalizer::load(stats_path);
    std::printf("dataset %s: %lld clips, %lld frames; batch %d x %d frames\n", data_path.c_str(),
                static_cast<long long>(ds.size()), static_cast<long long>(ds.total_frames()), kBatch, kWindow);
    const double need = stage1_windows_per_second(tok_config, ds, seconds);
    std::printf("stage 1 consumes %.0f windows/s here\n", need);
    double best = 0;
    for (int workers : {0, 1, 2}) {
      const double w = run_loader(ds, norm, workers, seconds);
      best = std::max(best, w);
      std::printf("vimo loader, %d worker(s): %9.0f windows/s %11.0f frames/s  = %.1fx stage 1\n", workers, w,
                  w * kWindow, w / need);
    }
    // The same work in Python (h5py load + numpy gather and normalize), measured now.
    const std::string cmd = python + " " + (fs::path(VIMO_SOURCE_DIR) / "scripts/data_loader_reference.py").string() +
                            " " + data_path + " " + std::to_string(seconds);
    FILE* p = popen(cmd.c_str(), "r");
    double ref = 0;
    if (p && std::fscanf(p, "%lf", &ref) == 1 && ref > 0)
      std::printf("h5py+numpy reference:       %9.0f windows/s  -> vimo/reference = %.1fx\n", ref, best / ref);
    else
      std::printf("h5py+numpy reference: not run (need %s with h5py and numpy; pass --python)\n", python.c_str());
    if (p) pclose(p);
    std::printf("best vimo: %.0f windows/s = %.1fx stage 1 (target 10x); a 10x margin holds for a stage 1 of up "
                "to %.0f windows/s (e.g. %.1f steps/s at batch 256 on a GPU)\n",
                best, best / need, best / 10, best / 10 / kBatch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "data_loader_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

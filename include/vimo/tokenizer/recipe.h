// Stage 1: training the RQ-VAE on random windows of a packed dataset, on top of train::Trainer;
// evaluation on a split (MPJPE, per-group error, codebook usage and perplexity, per-layer MPJPE).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vimo/tokenizer/config.h"

namespace vimo::tokenizer {

// Random windows [B, W, F] of one person each, drawn from in-memory clips [T, P, F]. Batch n is a
// pure function of (seed, n), so the data position is one counter and resume is exact.
class WindowSampler {
 public:
  WindowSampler(std::vector<torch::Tensor> clips, int64_t window, int64_t batch, uint64_t seed);
  torch::Tensor next();
  int64_t position() const { return batches_; }
  void seek(int64_t batches) { batches_ = batches; }
  int64_t candidates() const { return static_cast<int64_t>(items_.size()); }

 private:
  std::vector<torch::Tensor> clips_;
  std::vector<std::pair<int64_t, int64_t>> items_;  // (clip, person) long enough for a window
  int64_t window_, batch_, batches_ = 0;
  uint64_t seed_;
};

// Joint positions [..., 22, 3] (metres) from features [..., F]: the first 66 channels.
torch::Tensor joints_of(const torch::Tensor& features);

struct EvalResult {
  double mpjpe_mm = 0;
  std::vector<double> mpjpe_by_layers_mm;  // using the first 1..Q layers
  std::map<std::string, double> group_error;  // mean absolute error per feature group (raw units)
  std::vector<double> usage;       // fraction of codes used, per layer
  std::vector<double> perplexity;  // exp(entropy) of code frequencies, per layer
  int64_t clips = 0, frames = 0;
  nlohmann::json to_json() const;
  std::string table() const;
};

// Evaluates `model` on clips [T, P, F] (persons present given by `persons`).
EvalResult evaluate(Rqvae& model, const std::vector<torch::Tensor>& clips, torch::Device device,
                    bool per_layer = true);

// Loads the clips of <packed>/<split>.h5 as [T, persons, F] tensors; a clear error names the
// commands that make the dataset when it is missing.
std::vector<torch::Tensor> load_split(const std::string& packed_dir, const std::string& split);
// Per-feature mean/std: <packed>/stats.safetensors when present, else computed from `clips`.
std::pair<torch::Tensor, torch::Tensor> load_stats(const std::string& packed_dir,
                                                   const std::vector<torch::Tensor>& clips);

// The stage-1 training task (exposed for tests that drive train::Trainer directly).
std::unique_ptr<train::Task> make_task(const TokenizerConfig& cfg, Rqvae model, std::vector<torch::Tensor> train_clips,
                                       std::vector<torch::Tensor> val_clips, torch::Device device);
// Builds the model with its normalizer set from the dataset's mean/std [F] (position statistics
// recomputed over `train_clips` in the root-relative layout when model.root_relative).
Rqvae make_model(const TokenizerConfig& cfg, const torch::Tensor& mean, const torch::Tensor& sd,
                 const std::vector<torch::Tensor>& train_clips);

// `vimo tokenizer train`: the whole stage. Returns the process exit code.
int train_tokenizer(const TokenizerConfig& cfg, const std::string& resolved_yaml);
// Same, on clips already in memory (tests, benchmarks); `val` may be empty.
int train_tokenizer_on(const TokenizerConfig& cfg, const std::string& resolved_yaml,
                       std::vector<torch::Tensor> train_clips, std::vector<torch::Tensor> val_clips,
                       const torch::Tensor& mean, const torch::Tensor& sd);

}  // namespace vimo::tokenizer

// Stage 1 (config schema "tokenizer"): the RQ-VAE trained on random windows of a packed train split
// (data::WindowLoader) on top of train::Trainer, and its evaluation on whole clips (MPJPE, per-group
// error, codebook usage and perplexity, MPJPE per number of layers).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/run.h"
#include "vimo/data/loader.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/packed.h"
#include "vimo/tokenizer/rqvae.h"
#include "vimo/train/distributed.h"
#include "vimo/train/trainer.h"

namespace vimo::train {

struct TokenizerDataSection {
  std::string packed;
  data::WindowLoaderOptions loader;  // batch_size, window, workers, prefetch; its seed is run.seed
  int64_t val_clips = 0;
  TokenizerDataSection() {
    loader.batch_size = 32;
    loader.workers = 1;
    loader.prefetch = 4;
  }
  template <class V> void visit(V& v) {
    v.key("packed", packed, "packed dataset directory with {train,val,test}.h5 (made by `vimo data prepare`)");
    loader.visit(v);
    v.key("val_clips", val_clips, "validation clips used during training; 0 = the whole val split", core::opt().min(0));
  }
};

struct TokenizerLossSection {
  double recon = 1.0;
  double joints = 0.5;
  double velocity = 0.5;
  double commit = 0.02;
  template <class V> void visit(V& v) {
    v.key("recon", recon, "weight of smooth-L1 on normalized features", core::opt().min(0));
    v.key("joints", joints, "weight of L1 on recovered joint positions (metres)", core::opt().min(0));
    v.key("velocity", velocity, "weight of L1 on joint velocities (metres/frame, x10)", core::opt().min(0));
    v.key("commit", commit, "weight of the commitment loss", core::opt().min(0));
  }
};

struct TokenizerConfig {
  core::RunSection run;
  TokenizerDataSection data;
  tokenizer::RqvaeOptions model;
  TokenizerLossSection loss;
  TrainSection train;
  OptimSection optim;
  DistSection dist;
  TokenizerConfig() { train.best_metric = "mpjpe_mm"; }
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("data", data);
    v.section("model", model);
    v.section("loss", loss);
    v.section("train", train);
    v.section("optim", optim);
    v.section("dist", dist);
  }
};

struct TokenizerEvalResult {
  double mpjpe_mm = 0;     // eval::mpjpe_mm over every joint of every person-frame
  double pa_mpjpe_mm = 0;  // eval::pa_mpjpe_mm, each pose aligned on its own
  std::vector<double> mpjpe_by_layers_mm;     // using the first 1..Q layers
  std::map<std::string, double> group_error;  // mean absolute error per feature group (raw units)
  std::vector<double> usage;                  // fraction of codes used, per layer
  std::vector<double> perplexity;             // exp(entropy) of code frequencies, per layer
  int64_t clips = 0, frames = 0;
  nlohmann::json to_json() const;
  std::string table() const;
};

// Encodes and decodes each clip [T, persons, 262] whole (T cut to a multiple of 4).
TokenizerEvalResult evaluate_tokenizer(tokenizer::Rqvae& model, const std::vector<torch::Tensor>& clips,
                                       torch::Device device, bool per_layer = true);

// <packed_dir>/<split>.h5 read into memory; a missing directory or split names the commands that
// make a packed dataset.
data::PackedDataset open_packed_split(const std::string& packed_dir, const std::string& split);
// Clips [T, persons, 262] of a packed split (views of its frames); the first `limit` (0 = all).
std::vector<torch::Tensor> split_clips(const data::PackedDataset& ds, int64_t limit = 0);

// The RQ-VAE of `cfg.model` with its normalizer set from the dataset statistics `stats` (position
// statistics recomputed over `train` in the root-relative layout when model.root_relative).
tokenizer::Rqvae make_tokenizer_model(const TokenizerConfig& cfg, const data::Normalizer& stats,
                                      const data::PackedDataset& train);
// The stage-1 task: batches from a data::WindowLoader over `train` (raw features, seeded by
// run.seed; its state is the task's data state), validation on `val_clips` (first data.val_clips).
std::unique_ptr<Task> make_tokenizer_task(const TokenizerConfig& cfg, tokenizer::Rqvae model, data::PackedDataset train,
                                          std::vector<torch::Tensor> val_clips, torch::Device device);

// `vimo tokenizer train`: the whole stage. Returns the process exit code.
int train_tokenizer(const TokenizerConfig& cfg, const std::string& resolved_yaml);

}  // namespace vimo::train

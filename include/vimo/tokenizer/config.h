// Stage-1 config (schema "tokenizer"): run, data, model (architecture keys), loss, train, optim.
#pragma once
#include <cstdint>
#include <string>

#include "vimo/core/config.h"
#include "vimo/core/run.h"
#include "vimo/tokenizer/rqvae.h"
#include "vimo/train/trainer.h"

namespace vimo::tokenizer {

struct DataSection {
  std::string packed;
  int64_t window = 64;
  int64_t batch_size = 32;
  int64_t val_clips = 0;
  template <class V> void visit(V& v) {
    v.key("packed", packed, "packed dataset directory with {train,val,test}.h5 (made by `vimo data prepare`)");
    v.key("window", window, "training window in frames (a multiple of 4)", core::opt().min(4).max(4096));
    v.key("batch_size", batch_size, "windows per micro-batch (each window is one person)", core::opt().min(1));
    v.key("val_clips", val_clips, "validation clips used during training; 0 = the whole val split", core::opt().min(0));
  }
};

struct ModelSection {
  RqvaeOptions o;
  template <class V> void visit(V& v) {
    auto a = [] { return core::opt().architecture(); };
    v.key("feature_dim", o.feature_dim, "features per person and frame", a().min(1));
    v.key("width", o.width, "channels of the conv encoder/decoder", a().min(1));
    v.key("depth", o.depth, "dilated residual blocks per resolution", a().min(1).max(16));
    v.key("dilation_growth", o.dilation_growth, "dilation of block i is growth^i", a().min(1));
    v.key("down_t", o.down_t, "temporal halvings (2 = x4 downsampling)", a().min(1).max(2));
    v.key("code_dim", o.code_dim, "dimension of the latent codes", a().min(1));
    v.key("codebook_size", o.codebook_size, "K: codes per quantizer layer", a().min(2).max(65536));
    v.key("num_quantizers", o.num_quantizers, "Q: residual quantizer layers", a().min(1).max(64));
    v.key("ema_decay", o.ema_decay, "EMA decay of the codebook statistics", core::opt().min(0).max(1));
    v.key("reset_threshold", o.reset_threshold, "codes with an EMA usage count below this are reset (about 1/8 of batch*window/4/K)",
          core::opt().min(0));
    v.key("quantizer_dropout", o.quantizer_dropout, "probability of training a step on only the first 1..Q-1 layers",
          core::opt().min(0).max(1));
    v.key("root_relative", o.root_relative,
          "normalize joint positions as root + joints relative to the root (statistics from the train split)", a());
  }
};

struct LossSection {
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
  DataSection data;
  ModelSection model;
  LossSection loss;
  train::TrainSection train;
  train::OptimSection optim;
  TokenizerConfig() { train.best_metric = "mpjpe_mm"; }
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("data", data);
    v.section("model", model);
    v.section("loss", loss);
    v.section("train", train);
    v.section("optim", optim);
  }
};

}  // namespace vimo::tokenizer

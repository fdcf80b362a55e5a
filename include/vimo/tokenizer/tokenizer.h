// The motion tokenizer facade used by later stages and the CLI: a trained run directory loaded for
// encoding two-person clips to codes [T/4, P, Q] and decoding them back, plus the token cache.
#pragma once
#include <torch/torch.h>

#include <string>

#include "vimo/tokenizer/config.h"
#include "vimo/tokenizer/rqvae.h"

namespace vimo::tokenizer {

class MotionTokenizer {
 public:
  // Reads <run_dir>/config.yaml (architecture keys) and the weights of best/ (else the latest
  // complete checkpoint). A missing or corrupt run is a vimo::Error naming what to do.
  static MotionTokenizer load(const std::string& run_dir, torch::Device device = torch::kCPU);
  // clip [T, P, F] or [T, F] raw features -> codes [ceil(T/4), P, Q] int64. T is padded to a
  // multiple of 4 by repeating the last frame.
  torch::Tensor encode(const torch::Tensor& clip);
  // codes [T', P, L] or [T', L] (L <= Q layers, each in 0..K-1) -> features [4 T', P, F].
  torch::Tensor decode(const torch::Tensor& codes);
  const RqvaeOptions& options() const { return model_->options(); }
  Rqvae& model() { return model_; }
  const std::string& checkpoint() const { return checkpoint_; }
  const TokenizerConfig& config() const { return config_; }

 private:
  MotionTokenizer(Rqvae m, TokenizerConfig c, std::string ckpt, torch::Device d)
      : model_(std::move(m)), config_(std::move(c)), checkpoint_(std::move(ckpt)), device_(d) {}
  Rqvae model_;
  TokenizerConfig config_;
  std::string checkpoint_;
  torch::Device device_;
};

// Encodes every clip of a packed split into an HDF5 token cache (written atomically):
//   /codes [N_steps, P, Q] int32, /offsets [N] int64, /lengths [N] int64 (token steps),
//   /frames [N] int64, /persons [N] int32, /ids [N] strings; attributes codebook_size,
//   num_quantizers, downsample, tokenizer_run, source.
void write_token_cache(MotionTokenizer& tok, const std::string& split_h5, const std::string& out_h5,
                       const std::string& run_dir);

}  // namespace vimo::tokenizer

// RQ-VAE motion tokenizer: 1D-conv encoder (x4 temporal downsampling, dilated residual blocks),
// residual quantizer of Q EMA codebooks, decoder. One person at a time; both persons share weights.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vimo/core/config.h"

namespace vimo::tokenizer {

// The `model` section of a tokenizer config. Every key but the EMA/reset/dropout knobs is an
// architecture key: stored with the weights, from which MotionTokenizer::load rebuilds the model.

struct RqvaeOptions {
  int64_t feature_dim = 262;
  int64_t width = 512;
  int64_t depth = 3;            // residual blocks per resolution
  int64_t dilation_growth = 3;  // dilation of block i is growth^i
  int64_t down_t = 2;           // each halves the frame rate: x4 for 2
  int64_t code_dim = 512;
  int64_t codebook_size = 512;  // K
  int64_t num_quantizers = 6;   // Q
  double ema_decay = 0.99;
  double reset_threshold = 1.0;   // a code whose EMA count falls below this is reset to a batch vector
  double quantizer_dropout = 0.2; // probability of training on only the first 1..Q-1 layers
  // Normalize joint positions (feature dims 0..65) as root + joints relative to the root, so pose
  // detail is not drowned by the metres-wide spread of absolute positions (see docs/tokenizer.md).
  bool root_relative = true;
  int64_t downsample() const { return int64_t{1} << down_t; }
  template <class V> void visit(V& v) {
    auto a = [] { return core::opt().architecture(); };
    v.key("feature_dim", feature_dim, "features per person and frame", a().min(1));
    v.key("width", width, "channels of the conv encoder/decoder", a().min(1));
    v.key("depth", depth, "dilated residual blocks per resolution", a().min(1).max(16));
    v.key("dilation_growth", dilation_growth, "dilation of block i is growth^i", a().min(1));
    v.key("down_t", down_t, "temporal halvings (2 = x4 downsampling)", a().min(1).max(2));
    v.key("code_dim", code_dim, "dimension of the latent codes", a().min(1));
    v.key("codebook_size", codebook_size, "K: codes per quantizer layer", a().min(2).max(65536));
    v.key("num_quantizers", num_quantizers, "Q: residual quantizer layers", a().min(1).max(64));
    v.key("ema_decay", ema_decay, "EMA decay of the codebook statistics", core::opt().min(0).max(1));
    v.key("reset_threshold", reset_threshold,
          "codes with an EMA usage count below this are reset (about 1/8 of batch*window/4/K)", core::opt().min(0));
    v.key("quantizer_dropout", quantizer_dropout, "probability of training a step on only the first 1..Q-1 layers",
          core::opt().min(0).max(1));
    v.key("root_relative", root_relative,
          "normalize joint positions as root + joints relative to the root (statistics from the train split)", a());
  }
};

// Metadata of a tokenizer's model.safetensors: "format" = kRqvaeFormat and every architecture key
// of `o` as YAML text ("width" -> "64", "root_relative" -> "true").
constexpr const char* kRqvaeFormat = "vimo-rqvae";
std::map<std::string, std::string> architecture_metadata(const RqvaeOptions& o);

// relu -> conv(k3, dilation d) -> relu -> conv(k1), added to the input.
class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t width, int64_t dilation);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv1d conv1{nullptr}, conv2{nullptr};
};
TORCH_MODULE(ResBlock);

// Dilated residual blocks (dilations growth^(depth-1) .. growth^0, largest first).
class Resnet1DImpl : public torch::nn::Module {
 public:
  Resnet1DImpl(int64_t width, int64_t depth, int64_t growth);
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(Resnet1D);

// [B, F, T] -> [B, D, T/4]
class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const RqvaeOptions& o);
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(Encoder);

// [B, D, T/4] -> [B, F, T]
class DecoderImpl : public torch::nn::Module {
 public:
  explicit DecoderImpl(const RqvaeOptions& o);
  torch::Tensor forward(const torch::Tensor& x) { return model->forward(x); }
  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(Decoder);

struct QuantizeOut {
  torch::Tensor quantized;  // [N, D], straight-through when training
  torch::Tensor indices;    // [N] int64
  torch::Tensor commit;     // scalar: mse(x, sg(quantized))
};

// One codebook of K vectors, updated by exponential moving averages (no gradient), with dead codes
// reset to random vectors of the current batch. Buffers: codebook [K, D], code_sum [K, D],
// code_count [K], inited [1].
class QuantizerImpl : public torch::nn::Module {
 public:
  QuantizerImpl(int64_t codebook_size, int64_t code_dim, double decay, double reset_threshold);
  torch::Tensor nearest(const torch::Tensor& x) const;  // [N, D] -> [N]
  // `update`: apply the EMA/reset update (training only).
  QuantizeOut forward(const torch::Tensor& x, bool update);
  torch::Tensor codebook, code_sum, code_count, inited;

 private:
  void init_from(const torch::Tensor& x);
  void ema_update(const torch::Tensor& x, const torch::Tensor& idx);
  int64_t k_, d_;
  double decay_, threshold_;
  bool seen_inited_ = false;  // host mirror once `inited` was read as 1 (it never returns to 0 in training)
};
TORCH_MODULE(Quantizer);

struct RvqOut {
  torch::Tensor quantized;  // [B, D, T'] sum of the used layers
  torch::Tensor indices;    // [B, T', Q] int64; -1 for layers dropped this step
  torch::Tensor commit;     // scalar: mean over used layers
};

class ResidualQuantizerImpl : public torch::nn::Module {
 public:
  explicit ResidualQuantizerImpl(const RqvaeOptions& o);
  // z [B, D, T']. `layers` limits the layers used (0 = all, or quantizer dropout when training).
  RvqOut forward(const torch::Tensor& z, int64_t layers = 0);
  // codes [B, T', L] (L <= Q) -> [B, D, T'], summing the first L layers.
  torch::Tensor lookup(const torch::Tensor& codes) const;
  torch::nn::ModuleList layers{nullptr};
  int64_t num_quantizers() const { return static_cast<int64_t>(layers->size()); }

 private:
  RqvaeOptions o_;
};
TORCH_MODULE(ResidualQuantizer);

// Feature normalization stored with the weights, so a run directory encodes raw clips alone.
// With root_relative, the first 66 dims (22 joints x xyz) are re-expressed as the root's position
// followed by each other joint minus the root before (x - mean) / std; mean and std are then the
// statistics of that re-expressed layout (see model_stats).
class NormalizerImpl : public torch::nn::Module {
 public:
  NormalizerImpl(int64_t dim, bool root_relative);
  torch::Tensor normalize(const torch::Tensor& x) const;    // raw [.., F] -> normalized [.., F]
  torch::Tensor denormalize(const torch::Tensor& y) const;  // normalized [.., F] -> raw [.., F]
  torch::Tensor to_model_layout(const torch::Tensor& x) const;    // raw -> root-relative positions
  torch::Tensor from_model_layout(const torch::Tensor& x) const;  // the inverse
  bool root_relative() const { return root_relative_; }
  torch::Tensor mean, std;

 private:
  bool root_relative_;
};
TORCH_MODULE(Normalizer);

// Mean and std [F] of the normalizer's input layout over the frames of `clips` (each [T, P, F] or
// [T, F]): the dataset statistics with the position dims replaced by those of the root-relative
// layout when `root_relative` (other dims keep `mean`/`sd`, the packed dataset's statistics).
std::pair<torch::Tensor, torch::Tensor> model_stats(const std::vector<torch::Tensor>& clips, const torch::Tensor& mean,
                                                    const torch::Tensor& sd, bool root_relative);

struct RqvaeOut {
  torch::Tensor recon;    // [B, T, F] raw (denormalized) features
  torch::Tensor recon_n;  // [B, T, F] normalized
  torch::Tensor indices;  // [B, T/4, Q]
  torch::Tensor commit;
};

class RqvaeImpl : public torch::nn::Module {
 public:
  explicit RqvaeImpl(const RqvaeOptions& o);
  // x: raw features [B, T, F], T a multiple of 4.
  RqvaeOut forward(const torch::Tensor& x, int64_t layers = 0);
  torch::Tensor encode(const torch::Tensor& x);                       // [B, T, F] -> [B, T/4, Q]
  torch::Tensor decode(const torch::Tensor& codes);                   // [B, T/4, L] -> [B, T, F] raw
  const RqvaeOptions& options() const { return o_; }
  Encoder encoder{nullptr};
  ResidualQuantizer quantizer{nullptr};
  Decoder decoder{nullptr};
  Normalizer normalizer{nullptr};

 private:
  void check_input(const torch::Tensor& x) const;
  RqvaeOptions o_;
};
TORCH_MODULE(Rqvae);

}  // namespace vimo::tokenizer

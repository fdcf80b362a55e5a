// RQ-VAE modules. Child names follow the common PyTorch RVQ-VAE layout (encoder.model.N...,
// quantizer.layers.N.codebook, decoder.model.N...) so Python reads the safetensors directly.
#include "vimo/tokenizer/rqvae.h"

#include "vimo/core/error.h"
#include "vimo/core/process_group.h"
#include "vimo/motion/clip.h"

namespace vimo::tokenizer {

namespace nn = torch::nn;

constexpr int64_t kPositionDims = motion::kNumJoints * 3;  // joint positions lead a feature vector

// Adds `sign` x the root's position to every other joint (dims 0..65); the rest passes through.
// sign -1: raw -> root-relative layout; +1: the inverse.
static torch::Tensor shift_by_root(const torch::Tensor& x, double sign) {
  auto s = x.sizes().vec();
  s.back() = motion::kNumJoints;
  s.push_back(3);
  auto p = x.narrow(-1, 0, kPositionDims).reshape(s);  // [.., 22, 3]
  auto root = p.narrow(-2, 0, 1);
  auto moved = torch::cat({root, p.narrow(-2, 1, p.size(-2) - 1) + sign * root}, -2);
  return torch::cat({moved.flatten(-2), x.narrow(-1, kPositionDims, x.size(-1) - kPositionDims)}, -1);
}

namespace {
// A Sequential with a plain forward(), so it can sit inside another Sequential (keeps "0", "1" names).
class StageImpl : public nn::SequentialImpl {
 public:
  using nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(Stage);

nn::Conv1d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0, int64_t dil = 1) {
  return nn::Conv1d(nn::Conv1dOptions(in, out, k).stride(stride).padding(pad).dilation(dil));
}
}  // namespace

ResBlockImpl::ResBlockImpl(int64_t width, int64_t dilation) {
  conv1 = register_module("conv1", conv(width, width, 3, 1, dilation, dilation));
  conv2 = register_module("conv2", conv(width, width, 1));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x) {
  return x + conv2(torch::relu(conv1(torch::relu(x))));
}

Resnet1DImpl::Resnet1DImpl(int64_t width, int64_t depth, int64_t growth) {
  model = nn::Sequential();
  // Largest dilation first, so the receptive field grows before the resolution changes.
  for (int64_t i = depth - 1; i >= 0; --i) {
    int64_t d = 1;
    for (int64_t j = 0; j < i; ++j) d *= growth;
    model->push_back(ResBlock(width, d));
  }
  register_module("model", model);
}

EncoderImpl::EncoderImpl(const RqvaeOptions& o) {
  model = nn::Sequential();
  model->push_back(conv(o.feature_dim, o.width, 3, 1, 1));
  model->push_back(nn::ReLU());
  for (int64_t i = 0; i < o.down_t; ++i)
    model->push_back(Stage(conv(o.width, o.width, 4, 2, 1), Resnet1D(o.width, o.depth, o.dilation_growth)));
  model->push_back(conv(o.width, o.code_dim, 3, 1, 1));
  register_module("model", model);
}

DecoderImpl::DecoderImpl(const RqvaeOptions& o) {
  model = nn::Sequential();
  model->push_back(conv(o.code_dim, o.width, 3, 1, 1));
  model->push_back(nn::ReLU());
  for (int64_t i = 0; i < o.down_t; ++i)
    model->push_back(Stage(
        Resnet1D(o.width, o.depth, o.dilation_growth),
        nn::Upsample(nn::UpsampleOptions().scale_factor(std::vector<double>{2.0}).mode(torch::kNearest)),
        conv(o.width, o.width, 3, 1, 1)));
  model->push_back(conv(o.width, o.width, 3, 1, 1));
  model->push_back(nn::ReLU());
  model->push_back(conv(o.width, o.feature_dim, 3, 1, 1));
  register_module("model", model);
}

QuantizerImpl::QuantizerImpl(int64_t k, int64_t d, double decay, double threshold)
    : k_(k), d_(d), decay_(decay), threshold_(threshold) {
  codebook = register_buffer("codebook", torch::zeros({k, d}));
  code_sum = register_buffer("code_sum", torch::zeros({k, d}));
  code_count = register_buffer("code_count", torch::ones({k}));
  inited = register_buffer("inited", torch::zeros({1}));
}

torch::Tensor QuantizerImpl::nearest(const torch::Tensor& x) const {
  // |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin. fp32 for stable ties.
  const auto cb = codebook.to(torch::kFloat);
  const auto xf = x.to(torch::kFloat);
  const auto dist = cb.pow(2).sum(1).unsqueeze(0) - 2 * torch::matmul(xf, cb.t());  // [N, K]
  return dist.argmin(1);
}

// Random rows of x (repeated when the batch has fewer than K vectors), used to seed and reset codes.
// On a multi-rank run x is this rank's slice of the global batch's rows (ranks in order, equal
// slices: `total` rows in all): the rows are drawn from the global batch with the RNG every rank
// shares, each rank fills the rows it holds and a sum gives every rank the rows a single process with
// the whole batch would draw. Without `gather` only the draw is made (the RNG advances as when rows
// are needed) and an undefined tensor is returned.
static torch::Tensor random_rows(const torch::Tensor& x, int64_t k, int64_t total, bool gather = true) {
  auto& pg = core::process_group();
  auto idx = torch::randint(total, {k}, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  if (!pg.distributed()) return x.index_select(0, idx);
  if (!gather) return {};
  const int64_t n = x.size(0), lo = pg.rank() * n;
  auto mine = (idx >= lo).logical_and(idx < lo + n);
  auto rows = x.index_select(0, (idx - lo).clamp(0, n - 1)) * mine.unsqueeze(1).to(x.dtype());
  pg.sum(rows);
  return rows;
}

// Rows of the global batch: x's on one process; on several, checked to be the same on every rank.
static int64_t global_rows(const torch::Tensor& x) {
  auto& pg = core::process_group();
  if (!pg.distributed()) return x.size(0);
  VIMO_CHECK(pg.same_everywhere(static_cast<double>(x.size(0))),
             "the ranks' batches hold different numbers of quantizer inputs; the stage-1 loader splits windows "
             "evenly (data.batch_size a multiple of the number of processes)");
  return x.size(0) * pg.world_size();
}

void QuantizerImpl::init_from(const torch::Tensor& x) {
  auto rows = random_rows(x, k_, global_rows(x));
  codebook.copy_(rows);
  code_sum.copy_(rows);
  code_count.fill_(1.0);
  inited.fill_(1.0);
}

void QuantizerImpl::ema_update(const torch::Tensor& x, const torch::Tensor& idx) {
  auto onehot = torch::zeros({k_, x.size(0)}, x.options());
  onehot.scatter_(0, idx.unsqueeze(0), 1.0);
  // [K, D + 1]: the code sums and counts of this batch (of the global batch: summed over ranks).
  auto stats = torch::cat({torch::matmul(onehot, x), onehot.sum(1, true)}, 1);
  auto& pg = core::process_group();
  pg.sum(stats);
  code_sum.mul_(decay_).add_(stats.narrow(1, 0, x.size(1)), 1 - decay_);
  code_count.mul_(decay_).add_(stats.select(1, x.size(1)), 1 - decay_);
  const auto alive = (code_count >= threshold_).to(x.dtype()).unsqueeze(1);
  const auto updated = code_sum / code_count.clamp_min(1e-6).unsqueeze(1);
  // Dead codes take random rows of the batch. The counts are global, so every rank agrees on whether
  // any code is dead, and the rows are gathered over ranks only then.
  const bool dead = pg.distributed() && (code_count < threshold_).any().item<bool>();
  auto rows = random_rows(x, k_, x.size(0) * pg.world_size(), !pg.distributed() || dead);
  codebook.copy_(rows.defined() ? alive * updated + (1 - alive) * rows : updated);
}

QuantizeOut QuantizerImpl::forward(const torch::Tensor& x_in, bool update) {
  const auto x = x_in.to(torch::kFloat);  // codebooks stay fp32 under autocast
  // `inited` is read back once (a checkpoint may hold it either way), not every training step.
  if (update && !seen_inited_) {
    if (inited.item<float>() == 0) {
      torch::NoGradGuard ng;
      init_from(x.detach());
    }
    seen_inited_ = true;
  }
  auto idx = nearest(x.detach());
  auto q = codebook.index_select(0, idx);
  if (update) {
    torch::NoGradGuard ng;
    ema_update(x.detach(), idx);
  }
  QuantizeOut out;
  out.commit = torch::mse_loss(x, q.detach());
  out.quantized = x + (q - x).detach();  // straight-through: gradients pass to the encoder unchanged
  out.indices = idx;
  return out;
}

ResidualQuantizerImpl::ResidualQuantizerImpl(const RqvaeOptions& o) : o_(o) {
  layers = nn::ModuleList();
  for (int64_t i = 0; i < o.num_quantizers; ++i)
    layers->push_back(Quantizer(o.codebook_size, o.code_dim, o.ema_decay, o.reset_threshold));
  register_module("layers", layers);
}

RvqOut ResidualQuantizerImpl::forward(const torch::Tensor& z, int64_t use) {
  const int64_t Q = num_quantizers();
  const int64_t B = z.size(0), D = z.size(1), T = z.size(2);
  if (use <= 0 || use > Q) use = Q;
  if (is_training() && use == Q && Q > 1 && o_.quantizer_dropout > 0 &&
      torch::rand({1}).item<double>() < o_.quantizer_dropout)
    use = torch::randint(1, Q, {1}).item<int64_t>();  // 1..Q-1 layers this step
  auto x = z.permute({0, 2, 1}).reshape({B * T, D}).to(torch::kFloat);  // [N, D]
  auto residual = x;
  auto quantized = torch::zeros_like(x);  // sum of the chosen codes, no gradient
  auto indices = torch::full({B * T, Q}, -1, torch::TensorOptions().dtype(torch::kLong).device(z.device()));
  torch::Tensor commit = torch::zeros({}, x.options());
  for (int64_t q = 0; q < use; ++q) {
    auto out = layers->at<QuantizerImpl>(q).forward(residual, is_training());
    residual = residual - out.quantized.detach();
    quantized = quantized + out.quantized.detach();
    indices.select(1, q).copy_(out.indices);
    commit = commit + out.commit;
  }
  RvqOut r;
  // One straight-through estimator for the sum (not one per layer, which would scale the gradient by Q).
  quantized = x + (quantized - x).detach();
  r.quantized = quantized.reshape({B, T, D}).permute({0, 2, 1});
  r.indices = indices.reshape({B, T, Q});
  r.commit = commit / static_cast<double>(use);
  return r;
}

torch::Tensor ResidualQuantizerImpl::lookup(const torch::Tensor& codes) const {
  const int64_t B = codes.size(0), T = codes.size(1), L = codes.size(2);
  VIMO_CHECK(L >= 1 && L <= num_quantizers(), "codes have " + std::to_string(L) + " layers, the quantizer has " +
                                                  std::to_string(num_quantizers()));
  auto flat = codes.reshape({B * T, L}).to(torch::kLong);
  torch::Tensor sum;
  for (int64_t q = 0; q < L; ++q) {
    auto v = layers->at<QuantizerImpl>(q).codebook.index_select(0, flat.select(1, q));
    sum = q == 0 ? v : sum + v;
  }
  return sum.reshape({B, T, -1}).permute({0, 2, 1});
}

NormalizerImpl::NormalizerImpl(int64_t dim, bool root_relative)
    : root_relative_(root_relative && dim >= kPositionDims) {
  mean = register_buffer("mean", torch::zeros({dim}));
  std = register_buffer("std", torch::ones({dim}));
}

torch::Tensor NormalizerImpl::to_model_layout(const torch::Tensor& x) const {
  return root_relative_ ? shift_by_root(x, -1) : x;
}

torch::Tensor NormalizerImpl::from_model_layout(const torch::Tensor& x) const {
  return root_relative_ ? shift_by_root(x, 1) : x;
}

torch::Tensor NormalizerImpl::normalize(const torch::Tensor& x) const { return (to_model_layout(x) - mean) / std; }

torch::Tensor NormalizerImpl::denormalize(const torch::Tensor& y) const { return from_model_layout(y * std + mean); }

std::pair<torch::Tensor, torch::Tensor> model_stats(const std::vector<torch::Tensor>& clips, const torch::Tensor& mean,
                                                    const torch::Tensor& sd, bool root_relative) {
  auto m = mean.reshape({-1}).to(torch::kFloat).clone(), s = sd.reshape({-1}).to(torch::kFloat).clone();
  const int64_t F = m.numel();
  if (!root_relative || F < kPositionDims || clips.empty()) return {m, s};
  // Running sums in double over every frame and person: [66] each.
  auto sum = torch::zeros({kPositionDims}, torch::kDouble), sq = torch::zeros({kPositionDims}, torch::kDouble);
  int64_t n = 0;
  for (const auto& c : clips) {
    auto rows = shift_by_root(c.reshape({-1, F}).to(torch::kDouble), -1).narrow(1, 0, kPositionDims);
    sum += rows.sum(0);
    sq += rows.pow(2).sum(0);
    n += rows.size(0);
  }
  if (n < 2) return {m, s};
  auto mu = sum / n;
  auto var = (sq - n * mu.pow(2)) / (n - 1);
  m.narrow(0, 0, kPositionDims).copy_(mu);
  s.narrow(0, 0, kPositionDims).copy_(var.clamp_min(0).sqrt());
  return {m, s};
}

namespace {
// Collects the architecture keys of a visited struct as YAML scalars.
struct ArchitectureWriter {
  std::map<std::string, std::string>& out;
  template <class T> void key(const std::string& name, T& value, const std::string&, const core::KeyOpts& o = {}) {
    if (o.arch) out[name] = YAML::Dump(core::detail::to_node(value));
  }
};
}  // namespace

std::map<std::string, std::string> architecture_metadata(const RqvaeOptions& o) {
  std::map<std::string, std::string> m{{"format", kRqvaeFormat}};
  ArchitectureWriter w{m};
  RqvaeOptions copy = o;
  copy.visit(w);
  return m;
}

RqvaeImpl::RqvaeImpl(const RqvaeOptions& o) : o_(o) {
  encoder = register_module("encoder", Encoder(o));
  quantizer = register_module("quantizer", ResidualQuantizer(o));
  decoder = register_module("decoder", Decoder(o));
  normalizer = register_module("normalizer", Normalizer(o.feature_dim, o.root_relative));
}

void RqvaeImpl::check_input(const torch::Tensor& x) const {
  VIMO_CHECK(x.dim() == 3 && x.size(2) == o_.feature_dim,
             "motion features have shape " + c10::str(x.sizes()) + " but the tokenizer expects [B, T, " +
                 std::to_string(o_.feature_dim) + "] (model.feature_dim)");
  VIMO_CHECK(x.size(1) > 0 && x.size(1) % o_.downsample() == 0,
             "motion has " + std::to_string(x.size(1)) + " frames; the tokenizer needs a multiple of " +
                 std::to_string(o_.downsample()));
}

RqvaeOut RqvaeImpl::forward(const torch::Tensor& x, int64_t layers) {
  check_input(x);
  auto xn = normalizer->normalize(x).permute({0, 2, 1});  // [B, F, T]
  auto z = encoder->forward(xn);                           // [B, D, T/4]
  auto rq = quantizer->forward(z, layers);
  auto y = decoder->forward(rq.quantized.to(z.dtype())).permute({0, 2, 1}).to(torch::kFloat);  // [B, T, F]
  RqvaeOut out;
  out.recon_n = y;
  out.recon = normalizer->denormalize(y);
  out.indices = rq.indices;
  out.commit = rq.commit;
  return out;
}

torch::Tensor RqvaeImpl::encode(const torch::Tensor& x) {
  check_input(x);
  auto z = encoder->forward(normalizer->normalize(x).permute({0, 2, 1}));
  return quantizer->forward(z, 0).indices;
}

torch::Tensor RqvaeImpl::decode(const torch::Tensor& codes) {
  VIMO_CHECK(codes.dim() == 3, "codes must be [B, T/4, L], got " + c10::str(codes.sizes()));
  if (codes.numel() > 0) {
    const int64_t lo = codes.min().item<int64_t>(), hi = codes.max().item<int64_t>();
    VIMO_CHECK(lo >= 0 && hi < o_.codebook_size, "codes range from " + std::to_string(lo) + " to " +
                                                     std::to_string(hi) + " but the codebooks hold codes 0.." +
                                                     std::to_string(o_.codebook_size - 1));
  }
  auto y = decoder->forward(quantizer->lookup(codes)).permute({0, 2, 1});
  return normalizer->denormalize(y.to(torch::kFloat));
}

}  // namespace vimo::tokenizer

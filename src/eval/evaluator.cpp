// The InterCLIP-like evaluator: encoder layers with torch.nn.TransformerEncoderLayer's names, the
// motion and text encoders, the contrastive loss, and loading a trained run or a converted checkpoint.
#include "vimo/eval/evaluator.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/module_io.h"
#include "vimo/core/tensor_io.h"

namespace fs = std::filesystem;

namespace vimo::eval {
namespace {

constexpr const char* kMetaKey = "vimo_evaluator";

// Architecture keys to and from one JSON object.
struct JsonWriter {
  nlohmann::json& j;
  template <class T> void key(const std::string& name, T& value, const std::string&, const core::KeyOpts& o = {}) {
    if (o.arch) j[name] = value;
  }
};

struct JsonReader {
  const nlohmann::json& j;
  const std::string& where;
  template <class T> void key(const std::string& name, T& value, const std::string&, const core::KeyOpts& o = {}) {
    if (!o.arch) return;
    auto it = j.find(name);
    if (it == j.end()) {
      // Optional for converted checkpoints: the frame cut (InterGen evaluates at most 300 frames) and
      // the stride (1).
      VIMO_CHECK(name == "max_frames" || name == "frame_stride", where + ": the evaluator architecture has no '" + name +
                                           "'; convert the checkpoint again with scripts/convert_interclip.py");
      return;
    }
    try {
      value = it->get<T>();
    } catch (const std::exception& e) {
      throw Error(where + ": evaluator architecture key '" + name + "' is " + it->dump() + ", not the expected type");
    }
  }
};

torch::Tensor unit_rows(const torch::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

}  // namespace

nlohmann::json EvaluatorOptions::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  JsonWriter w{j};
  EvaluatorOptions copy = *this;
  copy.visit(w);
  return j;
}

EvaluatorOptions EvaluatorOptions::from_json(const nlohmann::json& j, const std::string& where) {
  VIMO_CHECK(j.is_object(), where + ": the evaluator architecture is not a JSON object");
  EvaluatorOptions o;
  JsonReader r{j, where};
  o.visit(r);
  return o;
}

torch::Tensor sinusoidal_positions(int64_t n, int64_t d) {
  auto pos = torch::arange(n, torch::kFloat).unsqueeze(1);
  auto div = torch::exp(torch::arange(0, d, 2, torch::kFloat) * (-std::log(10000.0) / static_cast<double>(d)));
  auto pe = torch::zeros({n, d});
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)}, torch::sin(pos * div));
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                torch::cos(pos * div).narrow(1, 0, d / 2));
  return pe;
}

EncoderLayerImpl::EncoderLayerImpl(int64_t width, int64_t heads, int64_t ff, double dropout, bool gelu)
    : heads_(heads), dropout_(dropout), gelu_(gelu) {
  VIMO_CHECK(width % heads == 0, "evaluator: width " + std::to_string(width) + " is not a multiple of " +
                                     std::to_string(heads) + " heads");
  attn_ = register_module("self_attn", std::make_shared<torch::nn::Module>());
  // As torch.nn.MultiheadAttention initializes them.
  in_w_ = attn_->register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  torch::nn::init::xavier_uniform_(in_w_);
  in_b_ = attn_->register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj_ = attn_->register_module("out_proj", torch::nn::Linear(width, width));
  torch::NoGradGuard ng;
  out_proj_->bias.zero_();
  linear1_ = register_module("linear1", torch::nn::Linear(width, ff));
  linear2_ = register_module("linear2", torch::nn::Linear(ff, width));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
}

torch::Tensor EncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& keep) {
  const int64_t B = x.size(0), S = x.size(1), W = x.size(2), hd = W / heads_;
  const double p = is_training() ? dropout_ : 0.0;
  // [B, S, 3W] -> q, k, v [B, H, S, hd]
  auto qkv = torch::nn::functional::linear(x, in_w_, in_b_).view({B, S, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  std::optional<torch::Tensor> mask;
  if (keep.defined()) mask = keep.view({B, 1, 1, S});
  auto a = at::scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], mask, p);
  a = out_proj_(a.transpose(1, 2).reshape({B, S, W}));
  auto h = norm1_(x + torch::dropout(a, p, is_training()));
  auto f = linear1_(h);
  f = gelu_ ? torch::gelu(f) : torch::relu(f);
  f = linear2_(torch::dropout(f, p, is_training()));
  return norm2_(h + torch::dropout(f, p, is_training()));
}

EvaluatorImpl::EvaluatorImpl(const EvaluatorOptions& o) : o_(o) {
  VIMO_CHECK(o.drop_features < o.motion_features, "evaluator: drop_features=" + std::to_string(o.drop_features) +
                                                      " leaves no features of the " +
                                                      std::to_string(o.motion_features));
  VIMO_CHECK(o.text_vocab > 0, "evaluator: text_vocab is not set (the tokenizer's vocabulary size)");
  const bool gelu = o.activation == "gelu";
  menc_ = register_module("motion_encoder", std::make_shared<torch::nn::Module>());
  query_token_ = menc_->register_parameter("query_token", torch::randn({1, o.latent_dim}));
  embed_motion_ = menc_->register_module("embed_motion", torch::nn::Linear(2 * (o.motion_features - o.drop_features),
                                                                           o.latent_dim));
  auto mt = menc_->register_module("transformer", std::make_shared<torch::nn::Module>());
  auto ml = mt->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    mlayers_.push_back(EncoderLayer(o.latent_dim, o.num_heads, o.ff_size, o.dropout, gelu));
    ml->push_back(mlayers_.back());
  }
  out_ln_ = menc_->register_module("out_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.latent_dim})));
  mout_ = menc_->register_module("out", torch::nn::Linear(o.latent_dim, o.embed_dim));

  token_embedding_ = register_module("token_embedding", torch::nn::Embedding(o.text_vocab, o.text_width));
  positional_embedding_ = register_parameter("positional_embedding", torch::randn({o.text_context, o.text_width}) * 0.01);
  latent_scale_ = register_parameter("latent_scale", torch::full({1}, std::sqrt(o.logit_scale_init)));
  auto tt = register_module("textTransEncoder", std::make_shared<torch::nn::Module>());
  auto tl = tt->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.text_layers; ++i) {
    tlayers_.push_back(EncoderLayer(o.text_width, o.text_heads, o.text_ff, o.dropout, gelu));
    tl->push_back(tlayers_.back());
  }
  text_ln_ = register_module("text_ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.text_width})));
  tout_ = register_module("out", torch::nn::Linear(o.text_width, o.embed_dim));
  torch::NoGradGuard ng;
  token_embedding_->weight.normal_(0, 0.02);
}

torch::Tensor EvaluatorImpl::encode_motion(const torch::Tensor& motion, const torch::Tensor& lengths) {
  const int64_t F = o_.motion_features;
  VIMO_CHECK(motion.dim() == 3 && motion.size(2) == 2 * F,
             "evaluator motion input has shape " + c10::str(motion.sizes()) + "; expected [B, T, " +
                 std::to_string(2 * F) + "] (both persons' " + std::to_string(F) + " features)");
  VIMO_CHECK(lengths.dim() == 1 && lengths.size(0) == motion.size(0),
             "evaluator lengths have shape " + c10::str(lengths.sizes()) + "; expected [" +
                 std::to_string(motion.size(0)) + "]");
  const int64_t T = std::min<int64_t>(motion.size(1), o_.max_frames), B = motion.size(0);
  auto len = lengths.to(motion.device(), torch::kLong).clamp_max(T);
  VIMO_CHECK(T > 0 && len.min().item<int64_t>() >= 1, "evaluator: every motion needs at least one frame");
  auto x = motion.narrow(1, 0, T);
  if (o_.frame_stride > 1) {  // frames 0, s, 2s, ...: a clip of n frames keeps ceil(n / s)
    x = x.slice(1, 0, T, o_.frame_stride);
    len = (len + o_.frame_stride - 1).div(o_.frame_stride, "floor");
  }
  const int64_t Ts = x.size(1);
  x = x.reshape({B, Ts, 2, F}).narrow(3, 0, F - o_.drop_features).reshape({B, Ts, -1});
  auto h = torch::cat({query_token_.expand({B, 1, o_.latent_dim}), embed_motion_(x)}, 1);  // [B, 1+T, D]
  h = h + sinusoidal_positions(Ts + 1, o_.latent_dim).to(h.device(), h.scalar_type()).unsqueeze(0);
  h = torch::dropout(h, o_.dropout, is_training());
  auto frames = torch::arange(Ts, len.options()).unsqueeze(0) < len.unsqueeze(1);  // [B, Ts]
  auto keep = torch::cat({torch::ones({B, 1}, frames.options()), frames}, 1);
  for (auto& l : mlayers_) h = l->forward(h, keep);
  auto e = mout_(out_ln_(h.select(1, 0)));
  return unit_rows(e) * latent_scale_;
}

torch::Tensor EvaluatorImpl::encode_text(const torch::Tensor& ids, int64_t eot) {
  VIMO_CHECK(ids.dim() == 2 && ids.size(1) == o_.text_context,
             "evaluator text ids have shape " + c10::str(ids.sizes()) + "; expected [B, " +
                 std::to_string(o_.text_context) + "] (text_context)");
  auto id = ids.to(token_embedding_->weight.device(), torch::kLong);
  VIMO_CHECK(id.numel() == 0 || (id.min().item<int64_t>() >= 0 && id.max().item<int64_t>() < o_.text_vocab),
             "evaluator text ids must lie in [0, " + std::to_string(o_.text_vocab) + ")");
  auto is_end = (id == eot);
  VIMO_CHECK(is_end.any(1).all().item<bool>(), "evaluator: a caption's ids hold no end id " + std::to_string(eot));
  auto h = token_embedding_(id) + positional_embedding_.unsqueeze(0);
  for (auto& l : tlayers_) h = l->forward(h, torch::Tensor());
  h = text_ln_(h);
  auto at = is_end.to(torch::kInt).argmax(1);  // first end id
  auto pooled = h.index({torch::arange(h.size(0), at.options()), at});
  return unit_rows(tout_(pooled)) * latent_scale_;
}

torch::Tensor EvaluatorImpl::contrastive_loss(const torch::Tensor& motion_emb, const torch::Tensor& text_emb,
                                              const torch::Tensor& same) {
  auto logits = latent_scale_.square() * torch::matmul(unit_rows(motion_emb), unit_rows(text_emb).t());
  if (same.defined()) {
    VIMO_CHECK(same.sizes() == logits.sizes() && same.scalar_type() == torch::kBool,
               "contrastive_loss: `same` must be a bool [" + std::to_string(logits.size(0)) + ", " +
                   std::to_string(logits.size(0)) + "] matrix, got " + c10::str(same.sizes()));
    auto off = same.to(logits.device()).logical_and(
        torch::eye(logits.size(0), torch::TensorOptions().dtype(torch::kBool).device(logits.device())).logical_not());
    logits = logits.masked_fill(off, -std::numeric_limits<float>::infinity());
  }
  auto target = torch::arange(logits.size(0), torch::TensorOptions().dtype(torch::kLong).device(logits.device()));
  return 0.5 * (torch::cross_entropy_loss(logits, target) + torch::cross_entropy_loss(logits.t(), target));
}

torch::Tensor embed_clips(Evaluator& model, const std::vector<torch::Tensor>& clips, int64_t batch) {
  torch::NoGradGuard ng;
  const auto& o = model->options();
  const auto dev = model->latent_scale().device();
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < clips.size(); s += batch) {
    const size_t e = std::min(clips.size(), s + static_cast<size_t>(batch));
    int64_t T = 1;
    for (size_t i = s; i < e; ++i) T = std::max<int64_t>(T, std::min<int64_t>(clips[i].size(0), o.max_frames));
    auto x = torch::zeros({static_cast<int64_t>(e - s), T, 2, o.motion_features});
    auto len = torch::zeros({static_cast<int64_t>(e - s)}, torch::kLong);
    for (size_t i = s; i < e; ++i) {
      const auto& c = clips[i];
      VIMO_CHECK(c.dim() == 3 && c.size(2) == o.motion_features && c.size(1) >= 1 && c.size(1) <= 2 && c.size(0) >= 1,
                 "clip " + std::to_string(i) + " has shape " + c10::str(c.sizes()) + "; the evaluator takes [T, 1 or 2, " +
                     std::to_string(o.motion_features) + "]");
      VIMO_CHECK(torch::isfinite(c).all().item<bool>(), "clip " + std::to_string(i) + " holds NaN or Inf features");
      const int64_t t = std::min<int64_t>(c.size(0), T);
      x[i - s].narrow(0, 0, t).narrow(1, 0, c.size(1)).copy_(c.narrow(0, 0, t));
      len[i - s] = t;
    }
    out.push_back(model->encode_motion(x.view({x.size(0), T, -1}).to(dev), len.to(dev)).cpu());
  }
  return out.empty() ? torch::zeros({0, o.embed_dim}) : torch::cat(out);
}

torch::Tensor embed_ids(Evaluator& model, const torch::Tensor& ids, int64_t eot, int64_t batch) {
  torch::NoGradGuard ng;
  const auto dev = model->latent_scale().device();
  std::vector<torch::Tensor> out;
  for (int64_t s = 0; s < ids.size(0); s += batch)
    out.push_back(model->encode_text(ids.narrow(0, s, std::min(batch, ids.size(0) - s)).to(dev), eot).cpu());
  return out.empty() ? torch::zeros({0, model->options().embed_dim}) : torch::cat(out);
}

std::vector<int64_t> caption_ids(const text::TextTokenizer& tok, const std::string& caption, int64_t context,
                                 int64_t sot, int64_t eot) {
  auto pieces = tok.encode(caption, false);
  std::vector<int64_t> ids(context, 0);
  ids[0] = sot;
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(pieces.size()), context - 2);
  for (int64_t i = 0; i < n; ++i) ids[1 + i] = pieces[i];
  ids[1 + n] = eot;
  return ids;
}

torch::Tensor LoadedEvaluator::tokenize(const std::vector<std::string>& captions) const {
  VIMO_CHECK(tokenizer, "evaluator '" + path + "' has no text tokenizer (for a clip_bpe evaluator pass CLIP's "
                        "bpe_simple_vocab_16e6.txt.gz, e.g. --clip-vocab FILE)");
  const int64_t C = model->options().text_context;
  auto out = torch::zeros({static_cast<int64_t>(captions.size()), C}, torch::kLong);
  auto acc = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < captions.size(); ++i) {
    VIMO_CHECK(!captions[i].empty(), "caption " + std::to_string(i) + " is empty: the evaluator needs text");
    auto ids = caption_ids(*tokenizer, captions[i], C, sot, eot);
    for (int64_t j = 0; j < C; ++j) acc[i][j] = ids[j];
  }
  return out;
}

std::string LoadedEvaluator::packed_dir() const {
  auto it = metadata.find("data.packed");
  return it == metadata.end() ? "" : it->second;
}

LoadedEvaluator load_evaluator(const std::string& path, const std::string& clip_vocab, torch::Device device) {
  VIMO_CHECK(fs::exists(path), "evaluator '" + path + "' does not exist; train one with `vimo eval train-evaluator "
                               "--config configs/eval/evaluator_demo.yaml` or convert InterGen's with "
                               "scripts/convert_interclip.py");
  std::string weights = path;
  std::vector<fs::path> dirs;  // where a text tokenizer is looked for
  if (fs::is_directory(path)) {
    const fs::path p(path), best = p / "best";
    if (fs::exists(p / "model.safetensors")) {
      weights = (p / "model.safetensors").string();
    } else if (fs::exists(best / "DONE") && fs::exists(best / "model.safetensors")) {
      weights = (best / "model.safetensors").string();
    } else {
      auto latest = core::CheckpointManager(path, 0).latest();
      VIMO_CHECK(latest, "evaluator run '" + path + "' has no complete checkpoint (no best/ and no "
                         "checkpoints/step_*/DONE); finish its training: rerun `vimo eval train-evaluator --config "
                         "FILE run.dir=" + path + "`");
      weights = *latest + "/model.safetensors";
    }
  }
  for (fs::path d = fs::path(weights).parent_path(); dirs.size() < 3 && !d.empty(); d = d.parent_path()) {
    dirs.push_back(d);
    if (d == d.parent_path()) break;
  }
  LoadedEvaluator le;
  le.path = weights;
  try {
    le.metadata = core::SafeTensors::open(weights).metadata();
  } catch (const std::exception& e) {
    throw Error("cannot read evaluator weights '" + weights + "': " + e.what());
  }
  auto it = le.metadata.find(kMetaKey);
  VIMO_CHECK(it != le.metadata.end(), "'" + weights + "' is not an evaluator: its metadata has no '" +
                                          std::string(kMetaKey) + "' (train one with `vimo eval train-evaluator`, "
                                          "or convert InterGen's interclip.ckpt with scripts/convert_interclip.py)");
  nlohmann::json arch;
  try {
    arch = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    throw Error("'" + weights + "': metadata '" + std::string(kMetaKey) + "' is not JSON (" + e.what() + ")");
  }
  auto o = EvaluatorOptions::from_json(arch, "'" + weights + "'");
  le.model = Evaluator(o);
  try {
    core::load_module_weights(*le.model, weights);
  } catch (const std::exception& e) {
    throw Error("cannot load the evaluator from '" + weights + "': " + e.what());
  }
  le.model->to(device);
  le.model->eval();

  // Trained evaluators read features normalized by their dataset's statistics (stats.safetensors in
  // the run); InterGen's InterCLIP reads raw features (its loader does not normalize).
  auto inp = le.metadata.find("features");
  if (inp != le.metadata.end() && inp->second == "normalized") {
    for (const auto& d : dirs)
      if (!le.normalizer.defined() && fs::exists(d / "stats.safetensors"))
        le.normalizer = data::Normalizer::load((d / "stats.safetensors").string());
    VIMO_CHECK(le.normalizer.defined(), "evaluator '" + weights + "' reads normalized features but no "
                                        "stats.safetensors was found beside it or in its run directory");
  } else {
    le.normalizer = data::Normalizer(torch::zeros({o.motion_features}), torch::ones({o.motion_features}));
  }

  // The text tokenizer: the run's SentencePiece model, or CLIP's merges file.
  std::string tok_path;
  if (o.text_tokenizer == "clip_bpe") {
    tok_path = clip_vocab;
    for (const auto& d : dirs)
      if (tok_path.empty() && fs::exists(d / "bpe_simple_vocab_16e6.txt.gz"))
        tok_path = (d / "bpe_simple_vocab_16e6.txt.gz").string();
    le.sot = o.text_vocab - 2, le.eot = o.text_vocab - 1;
  } else {
    for (const auto& d : dirs)
      if (tok_path.empty() && fs::exists(d / "text.model")) tok_path = (d / "text.model").string();
    VIMO_CHECK(!tok_path.empty(), "evaluator '" + weights + "' uses a sentencepiece text tokenizer but no text.model "
                                  "was found beside it or in its run directory");
  }
  if (!tok_path.empty()) {
    le.tokenizer = text::load_text_tokenizer(tok_path);
    VIMO_CHECK(le.tokenizer->vocab_size() <= o.text_vocab,
               "text tokenizer '" + tok_path + "' has " + std::to_string(le.tokenizer->vocab_size()) +
                   " ids but the evaluator '" + weights + "' embeds only " + std::to_string(o.text_vocab));
    if (o.text_tokenizer != "clip_bpe") {
      VIMO_CHECK(le.tokenizer->bos_id() && le.tokenizer->eos_id(),
                 "text tokenizer '" + tok_path + "' has no start/end ids");
      le.sot = *le.tokenizer->bos_id(), le.eot = *le.tokenizer->eos_id();
    } else if (le.tokenizer->bos_id() && le.tokenizer->eos_id()) {
      le.sot = *le.tokenizer->bos_id(), le.eot = *le.tokenizer->eos_id();
    }
  }
  return le;
}

}  // namespace vimo::eval

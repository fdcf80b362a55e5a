// Llama decoder forward pass: projections with LoRA, RMSNorm, RoPE, grouped-query SDPA attention,
// the KV cache and vocabulary resizing.
#include "vimo/lm/model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>

#include "vimo/core/error.h"
#include "vimo/lm/depth.h"
#include "vimo/lm/fused.h"
#include "vimo/lm/gemv.h"
#include "gemv_kernel.h"

namespace vimo::lm {
namespace {
// Rotary embedding: x·cos + [-x2, x1]·sin, written as x·cos + roll(x, D/2)·[-sin1, sin2] with the sign
// folded into the table (rope_tables). Bit-identical to the rotate-half form (negation is exact), and
// one kernel instead of neg + cat forward, one instead of three plus two zero-filled slices backward.
torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed) {
  return x * cos + at::roll(x, {x.size(-1) / 2}, {-1}) * sin_signed;
}
// Reentrant activation checkpoint of one decoder layer: the forward runs without building a graph;
// the backward reruns it with grad enabled (same CPU RNG state, so LoRA dropout draws the same mask)
// and backpropagates through it, which accumulates the layer's parameter gradients in place.
using LayerFn = std::function<torch::Tensor(const torch::Tensor&)>;
struct LayerFnHolder : torch::CustomClassHolder {
  explicit LayerFnHolder(LayerFn fn) : f(std::move(fn)) {}
  LayerFn f;
};
struct LayerCheckpoint : torch::autograd::Function<LayerCheckpoint> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor h, LayerFn f) {
    auto gen = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      ctx->saved_data["rng"] = gen.get_state();
    }
    auto holder = c10::make_intrusive<LayerFnHolder>(std::move(f));
    ctx->saved_data["f"] = c10::IValue::make_capsule(holder);
    ctx->save_for_backward({h});
    torch::NoGradGuard ng;
    return holder->f(h);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto h = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    auto holder = c10::static_intrusive_pointer_cast<LayerFnHolder>(ctx->saved_data["f"].toCapsule());
    auto gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor now;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      now = gen.get_state();
      gen.set_state(ctx->saved_data["rng"].toTensor());
    }
    torch::Tensor out;
    {
      torch::AutoGradMode on(true);
      out = holder->f(h);
    }
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(now);
    }
    torch::autograd::backward({out}, {grad[0]});
    return {h.grad(), torch::Tensor()};
  }
};
bool is_depth(const std::string& name) { return name.rfind("depth_head.", 0) == 0; }
// Tensors that are no part of the HF model: adapters, vocabulary tails and the depth head.
bool is_adapter_or_tail(const std::string& name) {
  return name.find("lora_") != std::string::npos || (name.size() > 5 && name.substr(name.size() - 5) == ".tail") ||
         is_depth(name);
}
}  // namespace

// ---- Proj ----
ProjImpl::ProjImpl(int64_t in, int64_t out, bool with_bias, const torch::TensorOptions& o) {
  weight = register_parameter("weight", torch::empty({out, in}, o));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}, o));
}

torch::Tensor ProjImpl::forward(const torch::Tensor& x) {
  auto y = dense(x, weight, bias);
  if (!has_lora() || merged) return y;
  auto h = x.to(lora_A->weight.scalar_type());
  if (dropout > 0 && is_training()) h = at::dropout(h, dropout, true);
  auto a = at::linear(h, lora_A->weight);  // [.., r]
  if (a.scalar_type() == y.scalar_type() && y.dim() >= 2) {
    // y + a·(sB)ᵀ as one addmm: the scaling lands on the [out, r] matrix, not on an [N, out] product
    const int64_t out = y.size(-1);
    return at::addmm(y.reshape({-1, out}), a.reshape({-1, a.size(-1)}), (lora_B->weight * scaling).t()).view(y.sizes());
  }
  return y + (at::linear(a, lora_B->weight) * scaling).to(y.scalar_type());
}

void ProjImpl::add_lora(int64_t r, double lora_alpha, double drop, bool rs) {
  VIMO_CHECK(!has_lora(), "a LoRA adapter is already attached to this projection");
  const int64_t in = weight.size(1), out = weight.size(0);
  // Adapters of half-precision bases are kept in float32 (as PEFT does) so small updates survive.
  auto o = weight.options().requires_grad(false);
  if (weight.scalar_type() != torch::kFloat64) o = o.dtype(torch::kFloat32);
  // PEFT's default: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0.
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  lora_A = register_module("lora_A", LoraPart(torch::empty({r, in}, o).uniform_(-bound, bound).requires_grad_(true)));
  lora_B = register_module("lora_B", LoraPart(torch::zeros({out, r}, o).requires_grad_(true)));
  rank = r;
  alpha = lora_alpha;
  rslora = rs;
  scaling = rs ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
  dropout = drop;
}

void ProjImpl::merge() {
  if (!has_lora() || merged) return;
  torch::NoGradGuard g;
  weight.add_((lora_B->weight.mm(lora_A->weight) * scaling).to(weight.scalar_type()));
  merged = true;
}

void ProjImpl::unmerge() {
  if (!has_lora() || !merged) return;
  torch::NoGradGuard g;
  weight.sub_((lora_B->weight.mm(lora_A->weight) * scaling).to(weight.scalar_type()));
  merged = false;
}

// ---- Embedding ----
EmbeddingImpl::EmbeddingImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& o) {
  weight = register_parameter("weight", torch::empty({vocab, dim}, o));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  if (!tail.defined() || tail.size(0) == 0) return at::embedding(weight, ids);
  const int64_t v0 = weight.size(0);
  auto base = at::embedding(weight, ids.clamp_max(v0 - 1));
  auto ext = at::embedding(tail, (ids - v0).clamp_min(0)).to(weight.scalar_type());
  return torch::where(ids.ge(v0).unsqueeze(-1), ext, base);
}

torch::Tensor EmbeddingImpl::project(const torch::Tensor& x) {
  if (!tail.defined() || tail.size(0) == 0) return dense(x, weight);
  auto t = tail.scalar_type() == x.scalar_type() ? tail : tail.to(x.scalar_type());
  return torch::cat({dense(x, weight), dense(x, t)}, -1);
}

torch::Tensor EmbeddingImpl::full() const {
  if (!tail.defined() || tail.size(0) == 0) return weight;
  return torch::cat({weight, tail.to(weight.scalar_type())}, 0);
}

void EmbeddingImpl::set_tail(torch::Tensor t) {
  if (!tail.defined()) {
    tail = register_parameter("tail", t, /*requires_grad=*/true);
  } else {
    torch::NoGradGuard g;
    tail.set_data(t);
    tail.requires_grad_(true);
  }
}

void EmbeddingImpl::fold_tail() {
  if (!tail.defined() || tail.size(0) == 0) return;
  torch::NoGradGuard g;
  auto merged = torch::cat({weight.detach(), tail.detach().to(weight.scalar_type())}, 0);
  weight.set_data(merged);
  tail.set_data(torch::empty({0, weight.size(1)}, weight.options()));
  tail.requires_grad_(false);
}

// ---- RmsNorm ----
RmsNormImpl::RmsNormImpl(int64_t dim, double e, const torch::TensorOptions& o) : eps(e) {
  weight = register_parameter("weight", torch::empty({dim}, o));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  return rms_norm(x, weight, eps);  // lm/fused.h
}

// ---- Attention / MLP / layer ----
AttentionImpl::AttentionImpl(const LlamaConfig& c, const torch::TensorOptions& o)
    : heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  q_proj = register_module("q_proj", Proj(c.hidden_size, heads * head_dim, c.attention_bias, o));
  k_proj = register_module("k_proj", Proj(c.hidden_size, kv_heads * head_dim, c.attention_bias, o));
  v_proj = register_module("v_proj", Proj(c.hidden_size, kv_heads * head_dim, c.attention_bias, o));
  o_proj = register_module("o_proj", Proj(heads * head_dim, c.hidden_size, c.attention_bias, o));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const torch::Tensor& mask, bool causal, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = q_proj(x).view({B, T, heads, head_dim}).transpose(1, 2);  // [B, Hq, T, D]
  auto k = k_proj(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);  // [B, Hkv, T, D]
  auto v = v_proj(x).view({B, T, kv_heads, head_dim}).transpose(1, 2);
  q = rope(q, cos, sin);
  k = rope(k, cos, sin);
  if (cache) {
    const int64_t past = cache->length;
    cache->k[layer].narrow(2, past, T).copy_(k);
    cache->v[layer].narrow(2, past, T).copy_(v);
    k = cache->k[layer].narrow(2, 0, past + T);
    v = cache->v[layer].narrow(2, 0, past + T);
  }
  // Grouped-query attention: each key/value head serves rep = heads/kv_heads query heads. One new token
  // (decoding) folds the rep query heads of a group into the query-length axis, q [B, Hkv, rep, D]:
  // the same sums without copying the cache rep times per step (the mask, if any, is the same for all
  // of them). Longer inputs repeat K/V (SDPA's enable_gqa for the unmasked prefill made full and cached
  // logits differ by more than 1e-5 on the CPU, so cached decoding would no longer equal recompute;
  // training, below, has no such pair to keep equal).
  if (kv_heads != heads && T == 1) {
    const int64_t rep = heads / kv_heads;
    auto qg = q.reshape({B, kv_heads, rep, head_dim});  // head h = g * rep + r, as the repeat below
    auto o = mask.defined() ? at::scaled_dot_product_attention(qg, k, v, mask, 0.0, false)
                            : at::scaled_dot_product_attention(qg, k, v, std::nullopt, 0.0, false);
    return o_proj(o.reshape({B, 1, heads * head_dim}));  // [B, Hkv, rep, D] -> [B, 1, Hq * D]
  }
  // Training without a mask or cache (the common case) hands the grouped K/V to SDPA as they are, as
  // transformers does: no repeated copies in the forward and no reduction of them in the backward.
  const bool sdpa_gqa =
      kv_heads != heads && !mask.defined() && !cache && is_training() && torch::GradMode::is_enabled();
  if (kv_heads != heads && !sdpa_gqa) {
    const int64_t Tk = k.size(2), rep = heads / kv_heads;
    k = k.unsqueeze(2).expand({B, kv_heads, rep, Tk, head_dim}).reshape({B, heads, Tk, head_dim});
    v = v.unsqueeze(2).expand({B, kv_heads, rep, Tk, head_dim}).reshape({B, heads, Tk, head_dim});
  }
  auto o = mask.defined() ? at::scaled_dot_product_attention(q, k, v, mask, 0.0, false)
                          : at::scaled_dot_product_attention(q, k, v, std::nullopt, 0.0, causal, std::nullopt, sdpa_gqa);
  return o_proj(o.transpose(1, 2).reshape({B, T, heads * head_dim}));
}

MlpImpl::MlpImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
  gate_proj = register_module("gate_proj", Proj(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  up_proj = register_module("up_proj", Proj(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  down_proj = register_module("down_proj", Proj(c.intermediate_size, c.hidden_size, c.mlp_bias, o));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return down_proj(at::silu(gate_proj(x)) * up_proj(x)); }

DecoderLayerImpl::DecoderLayerImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
  self_attn = register_module("self_attn", Attention(c, o));
  mlp = register_module("mlp", Mlp(c, o));
  input_layernorm = register_module("input_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
  post_attention_layernorm = register_module("post_attention_layernorm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
}

LlamaModelImpl::LlamaModelImpl(const LlamaConfig& c, const torch::TensorOptions& o) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, o));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c, o));
  layers = register_module("layers", layers);
  norm = register_module("norm", RmsNorm(c.hidden_size, c.rms_norm_eps, o));
}

// ---- LlamaForCausalLM ----
LlamaForCausalLMImpl::LlamaForCausalLMImpl(const LlamaConfig& c, const torch::TensorOptions& o) : cfg_(c) {
  cfg_.validate("model config");
  opts_ = o.has_dtype() ? o : o.dtype(dtype_from_name(c.torch_dtype, "config torch_dtype"));
  opts_ = opts_.requires_grad(false);
  model = register_module("model", LlamaModel(cfg_, opts_));
  if (!cfg_.tie_word_embeddings) lm_head = register_module("lm_head", Embedding(c.vocab_size, c.hidden_size, opts_));
  for (auto& p : parameters()) p.requires_grad_(true);
  inv_freq_ = rope_inv_freq(cfg_);
}

torch::Tensor LlamaForCausalLMImpl::rope_tables(const torch::Tensor& positions, torch::Tensor* sin) {
  VIMO_CHECK(inv_freq_.device() == positions.device(),
             "rotary positions on " + positions.device().str() + " but the model is on " + inv_freq_.device().str() +
                 "; move the model with to(device)");
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
  auto c = freqs.cos(), s = freqs.sin();                                  // each angle once
  *sin = torch::cat({-s, s}, -1).unsqueeze(1).to(dtype());  // [B, 1, T, D], signed for rope(): [-sin, sin]
  return torch::cat({c, c}, -1).unsqueeze(1).to(dtype());   // [B, 1, T, D]
}

torch::Tensor LlamaForCausalLMImpl::hidden(const torch::Tensor& ids_in, const ForwardOptions& opt) {
  VIMO_CHECK(ids_in.dim() == 2, "token ids must be [batch, length], got " + std::to_string(ids_in.dim()) + " dimensions");
  VIMO_CHECK(ids_in.size(1) > 0, "token ids are empty");
  const int64_t B = ids_in.size(0), T = ids_in.size(1), V = model->embed_tokens->size();
  // Ids on the host are range-checked (no device round trip) and moved to the model's device; ids
  // already on a GPU (sampled there) are not read back.
  if (ids_in.is_cpu()) {
    const int64_t lo = ids_in.min().item<int64_t>(), hi = ids_in.max().item<int64_t>();
    VIMO_CHECK(lo >= 0 && hi < V, "token id " + std::to_string(lo < 0 ? lo : hi) + " is out of range [0, " +
                                      std::to_string(V) + ") for this model's vocabulary (vocab_size " + std::to_string(V) + ")");
  }
  const auto ids = ids_in.to(device());
  KVCache* cache = opt.cache;
  const int64_t past = cache ? cache->length : 0;
  if (cache)
    VIMO_CHECK(past + T <= cache->capacity, "KV cache holds " + std::to_string(cache->capacity) + " positions; " +
                                                std::to_string(past + T) + " needed (allocate a larger cache)");
  torch::Tensor am;
  if (opt.attention_mask.defined()) {
    VIMO_CHECK(opt.attention_mask.sizes() == ids.sizes(), "attention_mask must have the shape of the token ids [B, T]");
    am = opt.attention_mask.to(torch::kBool);
  }
  bool any_pad = am.defined() && !am.all().item<bool>();  // on the host before the move when given there
  if (am.defined()) am = am.to(ids.device());
  torch::Tensor key_valid;  // [B, past + T]
  if (cache) {
    if (am.defined()) cache->key_valid.narrow(1, past, T).copy_(am);
    else cache->key_valid.narrow(1, past, T).fill_(true);
    cache->any_padding = cache->any_padding || any_pad;
    any_pad = cache->any_padding;
    key_valid = cache->key_valid.narrow(1, 0, past + T);
  } else if (am.defined()) {
    key_valid = am;
  }
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(ids.device());
  torch::Tensor positions = opt.positions.defined() ? opt.positions.to(ids.device()) : opt.positions;
  if (!positions.defined() && !opt.segment_ids.defined()) {
    if (any_pad)  // count real tokens only, so left padding does not shift positions
      positions = (key_valid.to(torch::kLong).cumsum(1) - 1).clamp_min(0).narrow(1, past, T);
    else
      positions = torch::arange(past, past + T, lopts).unsqueeze(0).expand({B, T});
  }
  torch::Tensor mask;
  bool causal = false;
  if (opt.segment_ids.defined()) {
    VIMO_CHECK(!cache && !am.defined(), "segment_ids (packed rows) cannot be combined with a KV cache or an attention_mask");
    VIMO_CHECK(opt.segment_ids.sizes() == ids.sizes(), "segment_ids must have the shape of the token ids [B, T]");
    auto seg = opt.segment_ids.to(ids.device(), torch::kLong);
    auto idx = torch::arange(T, lopts);
    if (!positions.defined()) {  // position within the segment: t - (first index of t's segment)
      auto starts = torch::cat({torch::ones({B, 1}, seg.options().dtype(torch::kBool)),
                                seg.narrow(1, 1, T - 1).ne(seg.narrow(1, 0, T - 1))}, 1);
      auto first = std::get<0>(torch::where(starts, idx.unsqueeze(0).expand({B, T}), torch::zeros_like(seg)).cummax(1));
      positions = idx.unsqueeze(0) - first;
    }
    auto m = seg.unsqueeze(2).eq(seg.unsqueeze(1)).logical_and(seg.ge(0).unsqueeze(1));  // [B, T, T]
    m = m.logical_and(torch::ones({T, T}, lopts.dtype(torch::kBool)).tril().unsqueeze(0));
    m = m.logical_or(torch::eye(T, lopts.dtype(torch::kBool)).unsqueeze(0));  // padding rows see themselves
    mask = m.unsqueeze(1);                                                    // [B, 1, T, T]
  } else if (!any_pad && past == 0) {
    causal = T > 1;  // no explicit mask, so fused kernels apply
  } else if (any_pad || T > 1) {
    auto qpos = torch::arange(past, past + T, lopts).unsqueeze(1);  // [T, 1]
    auto kpos = torch::arange(0, past + T, lopts).unsqueeze(0);     // [1, Tk]
    auto m = kpos.le(qpos).unsqueeze(0);                            // [1, T, Tk]
    if (key_valid.defined()) m = m.logical_and(key_valid.unsqueeze(1));
    m = m.logical_or(kpos.eq(qpos).unsqueeze(0));  // a padding query sees itself: no empty rows (NaN)
    mask = m.unsqueeze(1);                         // [B, 1, T, Tk]
  }
  torch::Tensor sin;
  auto cos = rope_tables(positions, &sin);
  auto h = model->embed_tokens(ids);
  if (opt.extra_ids.defined()) {  // depth-head slots: the embeddings of the slot's other levels are added
    const auto& e = opt.extra_ids;
    VIMO_CHECK(e.dim() == 3 && e.size(0) == B && e.size(1) == T,
               "extra_ids must be [B, T, E] with the token ids' B and T, got " + c10::str(e.sizes()));
    const auto& emb_w = model->embed_tokens->weight;
    const auto& emb_tail = model->embed_tokens->tail;
    const bool rows_in_place = !torch::GradMode::is_enabled() && e.is_cpu() && h.is_cpu() && h.is_contiguous() &&
                               h.scalar_type() == torch::kFloat32 && emb_w.scalar_type() == torch::kFloat32 &&
                               emb_w.is_contiguous() && (!emb_tail.defined() || emb_tail.is_contiguous());
    if (rows_in_place && e.size(2) > 0) {  // decoding: a few rows a step, where the tensor path costs ~10 ops
      const auto ea = e.contiguous();
      const int64_t* pe = ea.data_ptr<int64_t>();
      const int64_t H = h.size(2), E = e.size(2), V0 = emb_w.size(0);
      float* ph = h.data_ptr<float>();
      for (int64_t i = 0; i < B * T * E; ++i) {
        const int64_t id = pe[i];
        VIMO_CHECK(id >= -1 && id < V, "extra_ids hold an id outside [-1, " + std::to_string(V) + "): " + std::to_string(id));
        if (id < 0) continue;
        const float* row = id < V0 ? emb_w.data_ptr<float>() + id * H : emb_tail.data_ptr<float>() + (id - V0) * H;
        float* out = ph + (i / E) * H;
        for (int64_t j = 0; j < H; ++j) out[j] += row[j];
      }
    } else if (e.size(2) > 0) {
      if (e.is_cpu() && e.numel() > 0)
        VIMO_CHECK(e.max().item<int64_t>() < V && e.min().item<int64_t>() >= -1,
                   "extra_ids hold an id outside [-1, " + std::to_string(V) + ")");
      auto ed = e.to(ids.device());
      auto emb = model->embed_tokens(ed.clamp_min(0).reshape({B, -1})).view({B, T, e.size(2), -1});  // [B, T, E, H]
      h = h + (emb * ed.ge(0).unsqueeze(-1).to(emb.scalar_type())).sum(2);
    }
  }
  int64_t li = 0;
  const bool ckpt = checkpointing_ && is_training() && torch::GradMode::is_enabled() && !cache;
  for (const auto& m : *model->layers) {
    auto* layer = m->as<DecoderLayerImpl>();
    const int64_t i = li++;
    auto step = [=](const torch::Tensor& x) {
      auto y = x + layer->self_attn(layer->input_layernorm(x), cos, sin, mask, causal, cache, i);
      return y + layer->mlp(layer->post_attention_layernorm(y));
    };
    h = ckpt ? LayerCheckpoint::apply(h, LayerFn(step)) : step(h);
  }
  if (cache) cache->length += T;
  return model->norm(h);
}

torch::Tensor LlamaForCausalLMImpl::head(const torch::Tensor& h) {
  return lm_head ? lm_head->project(h) : model->embed_tokens->project(h);
}

torch::Tensor LlamaForCausalLMImpl::forward(const torch::Tensor& ids, const ForwardOptions& opt) {
  auto h = hidden(ids, opt);
  if (opt.last_only) h = h.narrow(1, h.size(1) - 1, 1);
  return head(h);
}

KVCache LlamaForCausalLMImpl::make_cache(int64_t batch, int64_t capacity) const {
  KVCache c;
  c.capacity = capacity;
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    c.k.push_back(torch::empty({batch, cfg_.num_key_value_heads, capacity, cfg_.head_dim}, opts_));
    c.v.push_back(torch::empty({batch, cfg_.num_key_value_heads, capacity, cfg_.head_dim}, opts_));
  }
  c.key_valid = torch::zeros({batch, capacity}, torch::TensorOptions().dtype(torch::kBool).device(opts_.device()));
  return c;
}

void LlamaForCausalLMImpl::init_weights(double std, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (is_adapter_or_tail(name)) continue;
    if (name.find("norm") != std::string::npos) p.fill_(1.0);
    else if (name.size() > 5 && name.substr(name.size() - 5) == ".bias") p.zero_();
    else p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32) * std);
  }
}

void LlamaForCausalLMImpl::resize_vocab(int64_t new_size, uint64_t seed) {
  const int64_t old = cfg_.vocab_size;
  VIMO_CHECK(new_size >= old, "cannot shrink the vocabulary from " + std::to_string(old) + " to " + std::to_string(new_size));
  if (new_size == old) return;
  fold_vocab_tail();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // As transformers' resize_token_embeddings(mean_resizing=True): new rows ~ N(mean, 1e-9 * covariance)
  // of the old rows, or the mean itself when that covariance is not positive definite. The rows are
  // kept in float32 whatever the base's dtype, so small updates to them survive.
  auto grow = [&](Embedding& e) {
    torch::NoGradGuard g;
    auto w = e->weight.detach().to(torch::kCPU, torch::kFloat64);  // [V0, H]
    auto mean = w.mean(0);
    auto centered = w - mean;
    auto cov = centered.t().mm(centered) / static_cast<double>(w.size(0)) * 1e-9;  // [H, H]
    auto [chol, info] = at::linalg_cholesky_ex(cov);
    auto rows = mean.unsqueeze(0).expand({new_size - old, w.size(1)}).clone();
    if (info.item<int64_t>() == 0)
      rows += torch::randn({new_size - old, w.size(1)}, gen, torch::kFloat64).mm(chol.t());
    e->set_tail(rows.to(e->weight.options().dtype(torch::kFloat32).requires_grad(false)));
  };
  grow(model->embed_tokens);
  if (lm_head) grow(lm_head);
  cfg_.vocab_size = new_size;
}

void LlamaForCausalLMImpl::fold_vocab_tail() {
  model->embed_tokens->fold_tail();
  if (lm_head) lm_head->fold_tail();
}

void LlamaForCausalLMImpl::attach_depth_head(std::shared_ptr<DepthHeadImpl> head) {
  VIMO_CHECK(!depth_, "the LM already has a depth head");
  VIMO_CHECK(head && head->options().hidden == cfg_.hidden_size,
             "depth head for hidden size " + std::to_string(head ? head->options().hidden : 0) + " on an LM of hidden size " +
                 std::to_string(cfg_.hidden_size));
  depth_ = register_module("depth_head", head);
}

void LlamaForCausalLMImpl::freeze_base() {
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    if (is_depth(name)) continue;  // the depth head is always trained
    const bool tail = name.size() > 5 && name.substr(name.size() - 5) == ".tail";
    p.requires_grad_(name.find("lora_") != std::string::npos || (tail && p.size(0) > 0));
  }
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaForCausalLMImpl::hf_params() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : named_parameters())
    if (!is_adapter_or_tail(item.key())) out.emplace_back(item.key(), item.value());
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaForCausalLMImpl::hf_state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters()) {
    const std::string& name = item.key();
    const auto& p = item.value();
    if (is_adapter_or_tail(name)) continue;
    if (name == "model.embed_tokens.weight") out.emplace_back(name, model->embed_tokens->full().detach());
    else if (name == "lm_head.weight") out.emplace_back(name, lm_head->full().detach());
    else out.emplace_back(name, p.detach());
  }
  return out;
}

std::vector<Proj> LlamaForCausalLMImpl::projections(const std::vector<std::string>& kinds, std::vector<std::string>* names) {
  std::vector<Proj> out;
  for (const auto& item : named_modules()) {
    const std::string& name = item.key();
    auto proj = std::dynamic_pointer_cast<ProjImpl>(item.value());
    if (!proj) continue;
    const std::string kind = name.substr(name.rfind('.') + 1);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
    out.emplace_back(proj);
    if (names) names->push_back(name);
  }
  return out;
}

// The frequencies move here, not lazily inside a forward that may run under InferenceMode.
void LlamaForCausalLMImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  opts_ = opts_.device(device).dtype(dtype);
  inv_freq_ = inv_freq_.to(device);
}

void LlamaForCausalLMImpl::to(torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(dtype, non_blocking);
  opts_ = opts_.dtype(dtype);
}

void LlamaForCausalLMImpl::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  opts_ = opts_.device(device);
  inv_freq_ = inv_freq_.to(device);
}

// transformers' rope_init_fn for "default", "linear" and "llama3" (modeling_rope_utils.py).
torch::Tensor rope_inv_freq(const LlamaConfig& c) {
  const int64_t D = c.head_dim;
  auto idx = torch::arange(0, D, 2, torch::kLong).to(torch::kFloat32) / static_cast<float>(D);
  auto inv = 1.0 / torch::pow(torch::tensor(static_cast<float>(c.rope_theta)), idx);
  if (c.rope_type == "linear") return inv / c.rope_factor;
  if (c.rope_type != "llama3") return inv;
  const double old_ctx = static_cast<double>(c.original_max_position_embeddings);
  const double low_wavelen = old_ctx / c.low_freq_factor, high_wavelen = old_ctx / c.high_freq_factor;
  auto wavelen = 2 * M_PI / inv;
  auto scaled = torch::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
  auto smooth = (old_ctx / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
  auto medium = wavelen.ge(high_wavelen).logical_and(wavelen.le(low_wavelen));
  return torch::where(medium, smoothed, scaled);
}

// ---- The depth head (lm/depth.h, docs/depth_head.md) ----
void DepthHeadOptions::check(const std::string& what) const {
  VIMO_CHECK(hidden > 0 && width > 0 && layers >= 0 && heads > 0 && ffn >= 0 && levels > 0 && codes > 0,
             what + ": depth head sizes must be positive (hidden " + std::to_string(hidden) + ", width " + std::to_string(width) +
                 ", layers " + std::to_string(layers) + ", heads " + std::to_string(heads) + ", levels " +
                 std::to_string(levels) + ", codes " + std::to_string(codes) + ")");
  VIMO_CHECK(width % heads == 0, what + ": depth head width " + std::to_string(width) + " is not divisible by its " +
                                     std::to_string(heads) + " heads");
}

DepthHeadImpl::DepthHeadImpl(DepthHeadOptions o, const torch::TensorOptions& t) : o_(o) {
  o_.check("depth head");
  const int64_t d = o_.width, F = o_.ffn_size(), Q = o_.levels, K = o_.codes;
  auto opts = t.requires_grad(false);
  // A dotted name (layers.0.qkv.weight) is a path of plain child modules ending in the parameter.
  auto param = [&](const std::string& n, std::vector<int64_t> shape) {
    torch::nn::Module* at = this;
    size_t from = 0;
    for (size_t dot = n.find('.'); dot != std::string::npos; from = dot + 1, dot = n.find('.', from)) {
      const std::string part = n.substr(from, dot - from);
      auto* child = at->named_children().find(part);
      at = child ? child->get() : at->register_module(part, std::make_shared<torch::nn::Module>()).get();
    }
    return at->register_parameter(n.substr(from), torch::empty(shape, opts), /*requires_grad=*/true);
  };
  in_proj = param("in_proj.weight", {d, o_.hidden});
  code_embed = param("code_embed.weight", {std::max<int64_t>(Q - 1, 0) * K, d});
  pos_embed = param("pos_embed", {Q, d});
  for (int64_t i = 0; i < o_.layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    attn_norm.push_back(param(p + "attn_norm.weight", {d}));
    qkv.push_back(param(p + "qkv.weight", {3 * d, d}));
    out.push_back(param(p + "out.weight", {d, d}));
    mlp_norm.push_back(param(p + "mlp_norm.weight", {d}));
    gate.push_back(param(p + "gate.weight", {F, d}));
    up.push_back(param(p + "up.weight", {F, d}));
    down.push_back(param(p + "down.weight", {d, F}));
  }
  norm = param("norm.weight", {d});
  heads = param("heads.weight", {Q * K, d});
  end = param("end.weight", {1, d});
}

namespace {
// x / sqrt(mean(x²) + 1e-5) · gain, in float32 (float64 for a float64 head).
torch::Tensor depth_rms(const torch::Tensor& x, const torch::Tensor& gain) {
  auto xf = x.scalar_type() == torch::kFloat64 ? x : x.to(torch::kFloat32);
  auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + 1e-5);
  return (y * gain.to(y.scalar_type())).to(x.scalar_type());
}
}  // namespace

torch::Tensor DepthHeadImpl::states(const torch::Tensor& h, const torch::Tensor& codes) {
  const int64_t N = h.size(0), Q = o_.levels, K = o_.codes, d = o_.width, n = o_.heads;
  VIMO_CHECK(h.dim() == 2 && h.size(1) == o_.hidden, "depth head: hidden states must be [N, " + std::to_string(o_.hidden) +
                                                         "], got " + c10::str(h.sizes()));
  VIMO_CHECK(codes.dim() == 2 && codes.size(0) == N && codes.size(1) == Q,
             "depth head: codes must be [N, " + std::to_string(Q) + "], got " + c10::str(codes.sizes()));
  auto u = torch::matmul(h.to(in_proj.scalar_type()), in_proj.t());  // [N, d]
  auto x = u.unsqueeze(1) + pos_embed.unsqueeze(0);                  // [N, Q, d]
  if (Q > 1) {
    auto c = codes.narrow(1, 0, Q - 1).to(in_proj.device()).clamp(0, K - 1) +
             torch::arange(Q - 1, codes.options().device(in_proj.device())).mul(K).unsqueeze(0);  // [N, Q-1]
    auto e = at::embedding(code_embed, c);                                                     // [N, Q-1, d]
    x = x + torch::cat({torch::zeros({N, 1, d}, e.options()), e}, 1);
  }
  for (int64_t i = 0; i < o_.layers; ++i) {
    auto y = depth_rms(x, attn_norm[i]);
    auto p = torch::matmul(y, qkv[i].t()).view({N, Q, 3, n, d / n}).permute({2, 0, 3, 1, 4});  // [3, N, n, Q, d/n]
    auto a = at::scaled_dot_product_attention(p[0], p[1], p[2], std::nullopt, 0.0, /*is_causal=*/true);
    x = x + torch::matmul(a.transpose(1, 2).reshape({N, Q, d}), out[i].t());
    y = depth_rms(x, mlp_norm[i]);
    x = x + torch::matmul(at::silu(torch::matmul(y, gate[i].t())) * torch::matmul(y, up[i].t()), down[i].t());
  }
  return depth_rms(x, norm);
}

std::pair<torch::Tensor, torch::Tensor> DepthHeadImpl::logits(const torch::Tensor& x) {
  const int64_t Q = o_.levels, K = o_.codes;
  auto codes = torch::einsum("nqd,qkd->nqk", {x, heads.view({Q, K, -1})});  // [N, Q, K]
  auto e = torch::matmul(x.select(1, 0), end.t()).squeeze(-1);             // [N]
  return {codes, e};
}

torch::Tensor DepthHeadImpl::level_logits(const torch::Tensor& h, const torch::Tensor& prefix) {
  const int64_t q = prefix.size(1);
  VIMO_CHECK(q < o_.levels, "depth head: a prefix of " + std::to_string(q) + " codes leaves no level of " +
                                std::to_string(o_.levels) + " to predict");
  auto codes = torch::zeros({h.size(0), o_.levels}, torch::TensorOptions().dtype(torch::kLong).device(in_proj.device()));
  if (q > 0) codes.narrow(1, 0, q).copy_(prefix);
  auto [lg, e] = logits(states(h, codes));
  auto level = lg.select(1, q);
  return q == 0 ? torch::cat({level, e.unsqueeze(1)}, 1) : level;
}

namespace {
// out[i] = Σ_j w[i·n + j] · x[j], i < m (row-major w [m, n]). The decoding GEMV on the intra-op
// threads: it wakes a second thread only for at least ~64 KiB of weights per thread (the head's
// feed-forward and code logits), and the LM's own GEMVs keep that pool warm between levels.
void matvec(const float* w, const float* x, float* out, int64_t m, int64_t n) {
  kernel::gemv_f32(x, 1, w, n, m, out, at::in_parallel_region() ? 1 : at::get_num_threads());
}
void rms_into(const float* x, const float* gain, float* y, int64_t n) {
  double ss = 0;
  for (int64_t j = 0; j < n; ++j) ss += static_cast<double>(x[j]) * x[j];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-5));
  for (int64_t j = 0; j < n; ++j) y[j] = x[j] * r * gain[j];
}
}  // namespace

torch::Tensor DepthHeadImpl::sample_slot(const torch::Tensor& h, const Pick& pick) {
  const int64_t N = h.size(0), Q = o_.levels, K = o_.codes;
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(in_proj.device());
  if (!in_proj.device().is_cpu() || in_proj.scalar_type() != torch::kFloat32) {
    auto prefix = torch::zeros({N, 0}, lopt);
    for (int64_t q = 0; q < Q; ++q) {
      auto c = pick(q, level_logits(h, prefix)).to(lopt).view({N, 1});
      prefix = torch::cat({prefix, c.clamp_max(K - 1)}, 1);  // END reads as a code only as the next level's input
    }
    return prefix;
  }
  torch::NoGradGuard ng;
  const int64_t d = o_.width, F = o_.ffn_size(), L = o_.layers, nh = o_.heads, dh = d / nh;
  auto ptr = [](const torch::Tensor& t) { return t.data_ptr<float>(); };
  const auto hc = h.to(torch::kCPU, torch::kFloat32).contiguous();  // [N, H]
  const int64_t H = hc.size(1);
  auto u = torch::empty({N, d}, torch::kFloat32);  // in_proj · h
  for (int64_t n = 0; n < N; ++n) matvec(ptr(in_proj), ptr(hc) + n * H, ptr(u) + n * d, d, H);
  std::vector<float> kc(static_cast<size_t>(N * L * Q * d)), vc(kc.size());  // keys, values [N, L, Q, d]
  std::vector<float> x(d), y(d), qkv3(3 * d), att(d), tmp(d), g(F), up_(F), sc(Q);
  auto codes = torch::zeros({N, Q}, torch::kLong);
  auto ca = codes.accessor<int64_t, 2>();
  std::vector<float> states(static_cast<size_t>(N * d));
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  for (int64_t q = 0; q < Q; ++q) {
    for (int64_t n = 0; n < N; ++n) {
      const float* un = ptr(u) + n * d;
      const float* pe = ptr(pos_embed) + q * d;
      for (int64_t j = 0; j < d; ++j) x[j] = un[j] + pe[j];
      if (q > 0) {
        const float* ce = ptr(code_embed) + ((q - 1) * K + std::min<int64_t>(ca[n][q - 1], K - 1)) * d;
        for (int64_t j = 0; j < d; ++j) x[j] += ce[j];
      }
      for (int64_t l = 0; l < L; ++l) {
        rms_into(x.data(), ptr(attn_norm[l]), y.data(), d);
        matvec(ptr(qkv[l]), y.data(), qkv3.data(), 3 * d, d);
        float* kl = kc.data() + ((n * L + l) * Q) * d;
        float* vl = vc.data() + ((n * L + l) * Q) * d;
        std::copy(qkv3.begin() + d, qkv3.begin() + 2 * d, kl + q * d);
        std::copy(qkv3.begin() + 2 * d, qkv3.end(), vl + q * d);
        for (int64_t a = 0; a < nh; ++a) {  // causal attention of the new position over levels 0..q
          const float* qa = qkv3.data() + a * dh;
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j <= q; ++j) {
            float s = 0.f;
            for (int64_t e = 0; e < dh; ++e) s += qa[e] * kl[j * d + a * dh + e];
            sc[j] = s * scale;
            mx = std::max(mx, sc[j]);
          }
          float z = 0.f;
          for (int64_t j = 0; j <= q; ++j) z += (sc[j] = std::exp(sc[j] - mx));
          for (int64_t e = 0; e < dh; ++e) {
            float acc = 0.f;
            for (int64_t j = 0; j <= q; ++j) acc += sc[j] * vl[j * d + a * dh + e];
            att[a * dh + e] = acc / z;
          }
        }
        matvec(ptr(out[l]), att.data(), tmp.data(), d, d);
        for (int64_t j = 0; j < d; ++j) x[j] += tmp[j];
        rms_into(x.data(), ptr(mlp_norm[l]), y.data(), d);
        matvec(ptr(gate[l]), y.data(), g.data(), F, d);
        matvec(ptr(up[l]), y.data(), up_.data(), F, d);
        for (int64_t j = 0; j < F; ++j) g[j] = g[j] / (1.f + std::exp(-g[j])) * up_[j];
        matvec(ptr(down[l]), g.data(), tmp.data(), d, F);
        for (int64_t j = 0; j < d; ++j) x[j] += tmp[j];
      }
      rms_into(x.data(), ptr(norm), states.data() + n * d, d);
    }
    const int64_t C = q == 0 ? K + 1 : K;
    auto lg = torch::empty({N, C}, torch::kFloat32);
    for (int64_t n = 0; n < N; ++n) {
      float* row = ptr(lg) + n * C;
      matvec(ptr(heads) + q * K * d, states.data() + n * d, row, K, d);
      if (q == 0) matvec(ptr(end), states.data() + n * d, row + K, 1, d);
    }
    auto c = pick(q, lg).to(torch::kCPU, torch::kLong).contiguous();
    const int64_t* pc = c.data_ptr<int64_t>();
    for (int64_t n = 0; n < N; ++n) ca[n][q] = pc[n];
  }
  return codes.to(in_proj.device());
}

void DepthHeadImpl::init_weights(double std, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    auto& t = p.value();
    const bool gain = n.find("norm") != std::string::npos;
    auto v = gain ? torch::ones(t.sizes(), torch::kFloat32)
                  : at::normal(0.0, std, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
    t.copy_(v.to(t.options()));
  }
}

LossParts depth_loss(DepthHead& head, const torch::Tensor& h, const torch::Tensor& targets) {
  const int64_t Q = head->options().levels, K = head->options().codes;
  VIMO_CHECK(targets.dim() == 2 && targets.size(1) == Q && h.dim() == 2 && h.size(0) == targets.size(0),
             "depth targets must be [N, " + std::to_string(Q) + "] beside hidden states [N, H], got " +
                 c10::str(targets.sizes()) + " and " + c10::str(h.sizes()));
  auto t = targets.to(torch::kCPU);
  auto rows = t.ne(kIgnoreIndex).any(1).nonzero().squeeze(1);
  LossParts out;
  const auto fdt = h.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  out.sum = torch::zeros({}, h.options().dtype(fdt));
  out.correct = torch::zeros({}, h.options().dtype(torch::kLong));
  if (rows.numel() == 0) {  // keeps every head tensor in the graph (zero gradients on every rank)
    for (const auto& p : head->parameters()) out.sum = out.sum + p.sum().to(fdt) * 0.0;
    return out;
  }
  t = t.index_select(0, rows);
  auto lvl0 = t.select(1, 0), above = t.narrow(1, 1, Q - 1);
  VIMO_CHECK(lvl0.ge(kIgnoreIndex).all().item<bool>() && lvl0.le(K).all().item<bool>() &&
                 lvl0.eq(kIgnoreIndex).logical_or(lvl0.ge(0)).all().item<bool>(),
             "depth targets of level 0 must be codes 0.." + std::to_string(K - 1) + ", END (" + std::to_string(K) + ") or -100");
  VIMO_CHECK(above.eq(kIgnoreIndex).logical_or(above.ge(0).logical_and(above.lt(K))).all().item<bool>(),
             "depth targets above level 0 must be codes 0.." + std::to_string(K - 1) + " or -100");
  VIMO_CHECK(above.eq(kIgnoreIndex).all(1).logical_or(lvl0.ne(K)).all().item<bool>(),
             "a depth target is END at level 0 but names codes above it");
  out.targets = t.ne(kIgnoreIndex).sum().item<int64_t>();
  const auto dev = h.device();
  auto td = t.to(dev);
  auto inputs = torch::where(td.ge(0).logical_and(td.lt(K)), td, torch::zeros_like(td));  // END and none read as code 0
  auto x = head->states(h.index_select(0, rows.to(dev)), inputs);
  auto [lg, e] = head->logits(x);
  auto l0 = torch::cat({lg.select(1, 0), e.unsqueeze(1)}, 1).to(fdt);  // [n, K + 1]
  namespace F = torch::nn::functional;
  auto ce = F::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(torch::kSum);
  out.sum = F::cross_entropy(l0, td.select(1, 0), ce);
  auto ok = l0.argmax(-1).eq(td.select(1, 0)).sum();
  if (Q > 1) {
    auto la = lg.narrow(1, 1, Q - 1).reshape({-1, K}).to(fdt);
    auto ta = td.narrow(1, 1, Q - 1).reshape({-1});
    out.sum = out.sum + F::cross_entropy(la, ta, ce);
    ok = ok + la.argmax(-1).eq(ta).sum();
  }
  out.correct = ok;
  return out;
}

LossParts motion_lm_loss(LlamaForCausalLM& m, const torch::Tensor& hidden, const torch::Tensor& targets,
                         const torch::Tensor& depth_targets) {
  auto text = causal_lm_loss(m, hidden, targets);
  if (!depth_targets.defined()) return text;
  VIMO_CHECK(m->depth_head(), "the batch has depth targets but the LM has no depth head");
  VIMO_CHECK(depth_targets.dim() == 3 && depth_targets.size(0) == hidden.size(0) && depth_targets.size(1) == hidden.size(1),
             "depth targets must be [B, T, Q] beside hidden states [B, T, H], got " + c10::str(depth_targets.sizes()));
  DepthHead head(m->depth_head());
  auto d = depth_loss(head, hidden.reshape({-1, hidden.size(2)}), depth_targets.reshape({-1, depth_targets.size(2)}));
  LossParts out;
  out.sum = text.sum + d.sum.to(text.sum.scalar_type());
  out.targets = text.targets + d.targets;
  out.correct = text.correct + d.correct.to(text.correct.device());
  return out;
}

torch::Tensor slot_extra_ids(const torch::Tensor& codes, int64_t motion_base, int64_t K) {
  const int64_t Q = codes.size(-1);
  auto above = codes.narrow(-1, 1, Q - 1);
  auto ids = above + (torch::arange(1, Q, codes.options()).mul(K) + motion_base);
  return torch::where(codes.narrow(-1, 0, 1).ge(0).logical_and(above.ge(0)), ids, torch::full_like(ids, -1));
}

}  // namespace vimo::lm

// The Llama decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) with a KV cache, LoRA-capable
// projections and an extensible vocabulary. Module and parameter names equal transformers' names.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "vimo/lm/config.h"

namespace vimo::lm {

struct DepthHeadImpl;
class DepthHead;

// A linear projection (weight [out, in]) that can carry a LoRA adapter: y = xWᵀ + s·(drop(x)Aᵀ)Bᵀ.
// The adapter lives in children `lora_A` / `lora_B` (each with `weight`), as PEFT names them.
struct LoraPartImpl : torch::nn::Module {
  explicit LoraPartImpl(torch::Tensor w) { weight = register_parameter("weight", std::move(w)); }
  torch::Tensor weight;
};
TORCH_MODULE(LoraPart);

struct ProjImpl : torch::nn::Module {
  ProjImpl(int64_t in, int64_t out, bool bias, const torch::TensorOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  bool has_lora() const { return !lora_A.is_empty(); }
  void add_lora(int64_t rank, double alpha, double dropout, bool rslora);
  void merge();    // W += s·B·A; the adapter stops being applied separately
  void unmerge();  // W -= s·B·A
  torch::Tensor weight, bias;
  LoraPart lora_A{nullptr}, lora_B{nullptr};
  double scaling = 0, dropout = 0, alpha = 0;
  int64_t rank = 0;
  bool merged = false, rslora = false;
};
TORCH_MODULE(Proj);

// Token embedding (weight [V0, H]) plus an optional trainable tail [Vn, H] of rows added by
// resize_vocab: the tail keeps its own requires_grad, so new rows train while the base is frozen.
struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t vocab, int64_t dim, const torch::TensorOptions& o);
  torch::Tensor forward(const torch::Tensor& ids);  // [B, T] -> [B, T, H]
  // x [.., H] -> [.., V0 + Vn] against these rows (the tied output head)
  torch::Tensor project(const torch::Tensor& x);
  int64_t size() const { return weight.size(0) + (tail.defined() ? tail.size(0) : 0); }
  torch::Tensor full() const;  // [V, H] weight ++ tail
  void set_tail(torch::Tensor t);
  void fold_tail();  // weight = weight ++ tail, no tail
  torch::Tensor weight, tail;
};
TORCH_MODULE(Embedding);

// Per-layer keys/values preallocated to `capacity` positions: [B, Hkv, capacity, D].
struct KVCache {
  std::vector<torch::Tensor> k, v;
  torch::Tensor key_valid;  // [B, capacity] bool: which cached positions are real tokens
  int64_t length = 0;       // filled positions
  int64_t capacity = 0;
  bool any_padding = false;
};

struct ForwardOptions {
  torch::Tensor attention_mask;  // [B, T] 1 = token, 0 = padding; undefined = no padding
  torch::Tensor positions;       // [B, T] rotary positions; default: from the mask (or past + arange)
  torch::Tensor segment_ids;     // [B, T] packed rows: attend within equal ids only (causal), -1 = padding;
                                 // positions default to restarting at 0 per segment. Not with a cache.
  torch::Tensor extra_ids;       // [B, T, E] int64: ids whose input embeddings are added to the position's
                                 // own (-1 = none): the other residual levels of a depth-head motion slot
  KVCache* cache = nullptr;      // appended to when given
  bool last_only = false;        // logits for the last position only: [B, 1, V]
};

struct RmsNormImpl : torch::nn::Module {
  RmsNormImpl(int64_t dim, double eps, const torch::TensorOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RmsNorm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const LlamaConfig& c, const torch::TensorOptions& o);
  // x [B, T, H]; cos, signed sin [B, 1, T, D] (rope_tables); mask [B, 1, T, Tk] bool or undefined
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, bool causal, KVCache* cache, int64_t layer);
  Proj q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t heads, kv_heads, head_dim;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(const LlamaConfig& c, const torch::TensorOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  Proj gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(const LlamaConfig& c, const torch::TensorOptions& o);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct LlamaModelImpl : torch::nn::Module {
  LlamaModelImpl(const LlamaConfig& c, const torch::TensorOptions& o);
  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  RmsNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

// LlamaForCausalLM. Parameters are allocated uninitialized (so loading a checkpoint never touches
// memory twice); call init_weights() for a model trained from scratch.
class LlamaForCausalLMImpl : public torch::nn::Module {
 public:
  LlamaForCausalLMImpl(const LlamaConfig& c, const torch::TensorOptions& o = {});
  // ids [B, T] int64 -> logits [B, T, V] (or [B, 1, V] with last_only)
  torch::Tensor forward(const torch::Tensor& ids, const ForwardOptions& opt = {});
  torch::Tensor hidden(const torch::Tensor& ids, const ForwardOptions& opt = {});  // [B, T, H] after the final norm
  torch::Tensor head(const torch::Tensor& h);  // [.., H] -> [.., V]
  void init_weights(double std, uint64_t seed);
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  // Appends rows up to `new_size` as float32 trainable tails of the embedding and (untied) head, drawn
  // from the old rows' mean and covariance as transformers does; config().vocab_size follows.
  void resize_vocab(int64_t new_size, uint64_t seed);
  void fold_vocab_tail();
  // requires_grad=false on every base weight; LoRA adapters and vocabulary tails stay trainable.
  void freeze_base();

  // HF-named tensors (tails folded in, tied head omitted), as written to model.safetensors.
  std::vector<std::pair<std::string, torch::Tensor>> hf_state() const;
  // The base parameters under their HF names (handles: set_data on them replaces the weights).
  std::vector<std::pair<std::string, torch::Tensor>> hf_params();
  std::vector<Proj> projections(const std::vector<std::string>& kinds, std::vector<std::string>* names = nullptr);

  const LlamaConfig& config() const { return cfg_; }
  LlamaConfig& mutable_config() { return cfg_; }
  torch::ScalarType dtype() const { return opts_.dtype().toScalarType(); }
  torch::Device device() const { return opts_.device(); }
  // Module::to, with the rotary frequencies (kept float32) and the options of new tensors (KV caches,
  // vocabulary rows) following the weights; also when a parent module's to() reaches this one.
  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;
  // Activation checkpointing: in training, each decoder layer keeps only its input and recomputes
  // its activations during the backward pass (less memory for one more forward per layer).
  void set_checkpointing(bool on) { checkpointing_ = on; }

  // A depth head (lm/depth.h) as the child `depth_head`: it trains and saves with the LM's trainable
  // tensors and moves with it, but is no part of the HF model (hf_state, hf_params, freeze_base skip it).
  void attach_depth_head(std::shared_ptr<DepthHeadImpl> head);
  const std::shared_ptr<DepthHeadImpl>& depth_head() const { return depth_; }

  LlamaModel model{nullptr};
  Embedding lm_head{nullptr};  // untied head only (weight [V0, H] + tail); null when tied

 private:
  torch::Tensor rope_tables(const torch::Tensor& positions, torch::Tensor* sin);  // cos [B,1,T,D]; *sin = [-sin, sin]
  LlamaConfig cfg_;
  torch::TensorOptions opts_;
  torch::Tensor inv_freq_;  // [D/2] float32
  bool checkpointing_ = false;
  std::shared_ptr<DepthHeadImpl> depth_;
};
TORCH_MODULE(LlamaForCausalLM);

// Inverse RoPE frequencies [head_dim/2] (float32) with the config's scaling (transformers' formulas).
torch::Tensor rope_inv_freq(const LlamaConfig& c);

}  // namespace vimo::lm

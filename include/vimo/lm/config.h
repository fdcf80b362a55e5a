// Llama hyper-parameters read from and written to a Hugging Face `config.json` (same field names),
// and the typed YAML config (schema "lm") that builds or loads a model, LoRA and sampling settings.
#pragma once
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/run.h"

namespace vimo::lm {

// The subset of transformers' LlamaConfig that changes the computation, plus token ids.
struct LlamaConfig {
  std::string model_type = "llama";
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::string rope_type = "default";  // default | linear | llama3
  double rope_factor = 1.0;
  double low_freq_factor = 1.0;       // llama3 only
  double high_freq_factor = 4.0;      // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  bool mlp_bias = false;
  std::string torch_dtype = "float32";  // float32 | float16 | bfloat16
  std::optional<int64_t> bos_token_id, pad_token_id;
  std::vector<int64_t> eos_token_id;
  nlohmann::json extra = nlohmann::json::object();  // fields vimo ignores, kept for the round trip

  // `context` names the file for error messages. Unsupported model types, activations and rope types
  // are errors; old (`rope_scaling`) and new (`rope_parameters`) layouts are both read.
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& context);
  static LlamaConfig load(const std::string& config_json_path);
  nlohmann::json to_json() const;
  void validate(const std::string& context) const;
  int64_t num_parameters() const;
};

torch::ScalarType dtype_from_name(const std::string& name, const std::string& context);  // "bfloat16"/"bf16"...
std::string dtype_name(torch::ScalarType t);  // HF spelling: "float32", "bfloat16", "float16"

// ---- YAML config (schema "lm"; stage 2 and 3 reuse these sections) ----
// The Llama architecture of a model trained from scratch (architecture keys).
struct LlamaArchSection {
  int64_t hidden_size = 128;
  int64_t intermediate_size = 344;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 2;
  int64_t max_position = 1024;
  double rope_theta = 10000.0;
  std::string rope_type = "default";
  double rope_factor = 1.0;
  bool tie_embeddings = true;
  double init_std = 0.02;
  template <class V> void visit(V& v) {
    auto a = [] { return core::opt().architecture(); };
    v.key("hidden_size", hidden_size, "model width (from scratch)", a().min(8));
    v.key("intermediate_size", intermediate_size, "SwiGLU hidden width (from scratch)", a().min(8));
    v.key("num_layers", num_layers, "decoder layers (from scratch)", a().min(1));
    v.key("num_heads", num_heads, "attention heads (from scratch)", a().min(1));
    v.key("num_kv_heads", num_kv_heads, "key/value heads, grouped-query attention (from scratch)", a().min(1));
    v.key("max_position", max_position, "longest sequence (from scratch)", a().min(16));
    v.key("rope_theta", rope_theta, "RoPE base (from scratch)", a().min(1));
    v.key("rope_type", rope_type, "RoPE scaling (from scratch)", a().one_of({"default", "linear", "llama3"}));
    v.key("rope_factor", rope_factor, "RoPE scaling factor, linear and llama3 (from scratch)", a().min(1));
    v.key("tie_embeddings", tie_embeddings, "output head shares the embedding matrix (from scratch)", a());
    v.key("init_std", init_std, "std of the random initial weights (from scratch)", core::opt().min(0));
  }
  // From-scratch architecture with `vocab` ids and weights of `dtype` (HF name, e.g. "float32").
  LlamaConfig to_llama(int64_t vocab, const std::string& dtype) const;
};

struct LmModelSection {
  std::string base = "scratch";
  int64_t vocab_size = 512;
  std::string dtype = "float32";
  LlamaArchSection arch;
  template <class V> void visit(V& v) {
    v.key("base", base, "HF Llama directory (config.json + safetensors), or scratch: random weights from the keys below");
    v.key("vocab_size", vocab_size, "vocabulary size when built from scratch", core::opt().min(2).architecture());
    v.key("dtype", dtype, "weights dtype", core::opt().one_of({"float32", "bfloat16", "float16"}));
    arch.visit(v);
  }
  bool scratch() const { return base == "scratch" || base.empty(); }
};

struct LmVocabSection {
  int64_t size = 0;  // 0 = keep the model's vocabulary
  template <class V> void visit(V& v) {
    v.key("size", size, "vocabulary size after appending rows (drawn from the old rows' mean and covariance); 0 keeps the model's",
          core::opt().min(0).architecture());
  }
};

// LoRA settings of every LM stage; the defaults are lm::LoraOptions' (lm/lora.h), the one set of them.
struct LmLoraSection {
  bool enabled = false;
  int64_t rank;
  double alpha;
  double dropout;
  std::vector<std::string> targets;
  bool rslora;
  LmLoraSection();
  template <class V> void visit(V& v) {
    v.key("enabled", enabled, "train LoRA adapters on a frozen base instead of the full model");
    v.key("rank", rank, "LoRA rank r", core::opt().min(1).max(4096));
    v.key("alpha", alpha, "LoRA alpha (scaling = alpha / r)", core::opt().min(0));
    v.key("dropout", dropout, "dropout on the LoRA input", core::opt().min(0).max(1));
    v.key("targets", targets, "projections: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj");
    v.key("rslora", rslora, "scale by alpha / sqrt(r) instead of alpha / r");
  }
};

struct LmGenerateSection {
  int64_t max_new = 256;
  bool greedy = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  double guidance = 1.0;
  int64_t seed = 0;
  template <class V> void visit(V& v) {
    v.key("max_new", max_new, "most new tokens per sequence", core::opt().min(1));
    v.key("greedy", greedy, "argmax decoding (ignores temperature/top_k/top_p)");
    v.key("temperature", temperature, "sampling temperature", core::opt().min(1e-6));
    v.key("top_k", top_k, "keep the k most likely tokens; 0 = off", core::opt().min(0));
    v.key("top_p", top_p, "nucleus sampling mass; 1 = off", core::opt().min(0).max(1));
    v.key("repetition_penalty", repetition_penalty, "HF-style penalty on tokens already present; 1 = off", core::opt().min(1e-6));
    v.key("guidance", guidance,
          "classifier-free guidance scale of text -> motion (vimo runs trained with data.caption_dropout > 0); 1 = off",
          core::opt().min(0));
    v.key("seed", seed, "sampling seed", core::opt().min(0));
  }
};

struct LmConfig {
  core::RunSection run;
  LmModelSection model;
  LmVocabSection vocab;
  LmLoraSection lora;
  LmGenerateSection generate;
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("model", model);
    v.section("vocab", vocab);
    v.section("lora", lora);
    v.section("generate", generate);
  }
};

}  // namespace vimo::lm

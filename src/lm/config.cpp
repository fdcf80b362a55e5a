// Reading and writing HF Llama `config.json`, and the "lm" YAML schema.
#include "vimo/lm/config.h"

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/schemas.h"
#include "vimo/lm/lora.h"

using json = nlohmann::json;

namespace vimo::lm {
namespace {
core::SchemaRegistrar<LmConfig> reg("lm");

template <class T> void read(const json& j, const char* key, T& out, const std::string& ctx) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const json::exception&) {
    throw Error(ctx + ": field \"" + key + "\" has the wrong type (" + j[key].dump() + ")");
  }
}
}  // namespace

torch::ScalarType dtype_from_name(const std::string& n, const std::string& ctx) {
  if (n == "float32" || n == "fp32" || n == "float") return torch::kFloat32;
  if (n == "bfloat16" || n == "bf16") return torch::kBFloat16;
  if (n == "float16" || n == "fp16" || n == "half") return torch::kFloat16;
  throw Error(ctx + ": dtype '" + n + "' is not supported (use float32, bfloat16 or float16)");
}

std::string dtype_name(torch::ScalarType t) {
  if (t == torch::kBFloat16) return "bfloat16";
  if (t == torch::kFloat16) return "float16";
  if (t == torch::kFloat32) return "float32";
  throw Error(std::string("dtype ") + c10::toString(t) + " is not a Llama weight dtype");
}

LlamaConfig LlamaConfig::from_json(const json& j, const std::string& ctx) {
  VIMO_CHECK(j.is_object(), ctx + ": expected a JSON object");
  LlamaConfig c;
  read(j, "model_type", c.model_type, ctx);
  VIMO_CHECK(c.model_type == "llama", ctx + ": model_type '" + c.model_type +
                                          "' is not supported; vimo loads Llama-family checkpoints (model_type \"llama\")");
  std::string act = "silu";
  read(j, "hidden_act", act, ctx);
  VIMO_CHECK(act == "silu", ctx + ": hidden_act '" + act + "' is not supported (Llama uses \"silu\")");
  read(j, "vocab_size", c.vocab_size, ctx);
  read(j, "hidden_size", c.hidden_size, ctx);
  read(j, "intermediate_size", c.intermediate_size, ctx);
  read(j, "num_hidden_layers", c.num_hidden_layers, ctx);
  read(j, "num_attention_heads", c.num_attention_heads, ctx);
  c.num_key_value_heads = c.num_attention_heads;
  read(j, "num_key_value_heads", c.num_key_value_heads, ctx);
  c.head_dim = c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0;
  read(j, "head_dim", c.head_dim, ctx);
  read(j, "max_position_embeddings", c.max_position_embeddings, ctx);
  read(j, "rms_norm_eps", c.rms_norm_eps, ctx);
  read(j, "rope_theta", c.rope_theta, ctx);
  read(j, "tie_word_embeddings", c.tie_word_embeddings, ctx);
  read(j, "attention_bias", c.attention_bias, ctx);
  read(j, "mlp_bias", c.mlp_bias, ctx);
  read(j, "torch_dtype", c.torch_dtype, ctx);
  read(j, "dtype", c.torch_dtype, ctx);  // newer transformers write "dtype"
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) c.bos_token_id = j["bos_token_id"].get<int64_t>();
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"].get<int64_t>();
  if (j.contains("eos_token_id")) {
    const auto& e = j["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_id = {e.get<int64_t>()};
    else if (e.is_array()) read(j, "eos_token_id", c.eos_token_id, ctx);
  }
  // RoPE: transformers < 4.5x wrote "rope_scaling" (+ top-level rope_theta); newer write "rope_parameters".
  json rope;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) rope = j["rope_parameters"];
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) rope = j["rope_scaling"];
  if (rope.is_object()) {
    const std::string rctx = ctx + " (rope parameters)";
    if (rope.contains("rope_type")) read(rope, "rope_type", c.rope_type, rctx);
    else read(rope, "type", c.rope_type, rctx);
    read(rope, "rope_theta", c.rope_theta, rctx);
    read(rope, "factor", c.rope_factor, rctx);
    read(rope, "low_freq_factor", c.low_freq_factor, rctx);
    read(rope, "high_freq_factor", c.high_freq_factor, rctx);
    c.original_max_position_embeddings = c.max_position_embeddings;
    read(rope, "original_max_position_embeddings", c.original_max_position_embeddings, rctx);
  }
  static const char* kKnown[] = {"model_type", "hidden_act", "vocab_size", "hidden_size", "intermediate_size",
                                 "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                                 "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
                                 "attention_bias", "mlp_bias", "torch_dtype", "dtype", "bos_token_id", "pad_token_id",
                                 "eos_token_id", "rope_parameters", "rope_scaling"};
  for (auto& [k, v] : j.items())
    if (std::find(std::begin(kKnown), std::end(kKnown), k) == std::end(kKnown)) c.extra[k] = v;
  c.validate(ctx);
  return c;
}

LlamaConfig LlamaConfig::load(const std::string& path) {
  json j;
  try {
    j = json::parse(core::read_file(path));
  } catch (const json::exception& e) {
    throw Error("'" + path + "' is not valid JSON: " + e.what());
  }
  return from_json(j, "'" + path + "'");
}

void LlamaConfig::validate(const std::string& ctx) const {
  VIMO_CHECK(rope_type == "default" || rope_type == "linear" || rope_type == "llama3",
             ctx + ": rope type '" + rope_type + "' is not supported (supported: default, linear, llama3)");
  auto pos = [&](int64_t v, const char* k) { VIMO_CHECK(v > 0, ctx + ": \"" + k + "\" must be positive, got " + std::to_string(v)); };
  pos(vocab_size, "vocab_size");
  pos(hidden_size, "hidden_size");
  pos(intermediate_size, "intermediate_size");
  pos(num_hidden_layers, "num_hidden_layers");
  pos(num_attention_heads, "num_attention_heads");
  pos(num_key_value_heads, "num_key_value_heads");
  pos(head_dim, "head_dim");
  VIMO_CHECK(head_dim % 2 == 0, ctx + ": head_dim must be even for RoPE, got " + std::to_string(head_dim));
  VIMO_CHECK(num_attention_heads % num_key_value_heads == 0,
             ctx + ": num_attention_heads (" + std::to_string(num_attention_heads) +
                 ") must be a multiple of num_key_value_heads (" + std::to_string(num_key_value_heads) + ")");
  VIMO_CHECK(rope_type != "llama3" || high_freq_factor > low_freq_factor,
             ctx + ": llama3 rope needs high_freq_factor > low_freq_factor");
  VIMO_CHECK(rope_factor > 0, ctx + ": rope factor must be positive");
  dtype_from_name(torch_dtype, ctx + " torch_dtype");
}

json LlamaConfig::to_json() const {
  json j = extra;
  j["architectures"] = extra.contains("architectures") ? extra["architectures"] : json::array({"LlamaForCausalLM"});
  j["model_type"] = model_type;
  j["hidden_act"] = "silu";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["mlp_bias"] = mlp_bias;
  j["torch_dtype"] = torch_dtype;
  j["bos_token_id"] = bos_token_id ? json(*bos_token_id) : json(nullptr);
  j["pad_token_id"] = pad_token_id ? json(*pad_token_id) : json(nullptr);
  j["eos_token_id"] = eos_token_id.size() == 1 ? json(eos_token_id[0]) : eos_token_id.empty() ? json(nullptr) : json(eos_token_id);
  if (rope_type == "default") {
    j["rope_scaling"] = nullptr;
  } else {
    json r = {{"rope_type", rope_type}, {"factor", rope_factor}};
    if (rope_type == "llama3") {
      r["low_freq_factor"] = low_freq_factor;
      r["high_freq_factor"] = high_freq_factor;
      r["original_max_position_embeddings"] = original_max_position_embeddings;
    }
    j["rope_scaling"] = r;
  }
  return j;
}

int64_t LlamaConfig::num_parameters() const {
  const int64_t attn = hidden_size * head_dim * (2 * num_attention_heads + 2 * num_key_value_heads);
  const int64_t layer = attn + 3 * hidden_size * intermediate_size + 2 * hidden_size;
  return num_hidden_layers * layer + vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2) + hidden_size;
}

LlamaConfig LlamaArchSection::to_llama(int64_t vocab, const std::string& dtype) const {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.hidden_size = hidden_size;
  c.intermediate_size = intermediate_size;
  c.num_hidden_layers = num_layers;
  c.num_attention_heads = num_heads;
  c.num_key_value_heads = num_kv_heads;
  c.head_dim = hidden_size / num_heads;
  c.max_position_embeddings = max_position;
  c.rope_theta = rope_theta;
  c.rope_type = rope_type;
  c.rope_factor = rope_factor;
  c.original_max_position_embeddings = max_position;
  c.tie_word_embeddings = tie_embeddings;
  c.torch_dtype = dtype;
  c.rms_norm_eps = 1e-5;
  c.validate("config section 'model'");
  return c;
}

LmLoraSection::LmLoraSection() {
  const LoraOptions d;
  rank = d.rank;
  alpha = d.alpha;
  dropout = d.dropout;
  targets = d.targets;
  rslora = d.rslora;
}

}  // namespace vimo::lm

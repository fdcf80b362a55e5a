// LoRA adapters: attach, save and load in PEFT's layout, merge and unmerge.
#include "vimo/lm/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <regex>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::lm {
namespace {
const std::vector<std::string> kKinds = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const std::string kPrefix = "base_model.model.";  // PEFT wraps the causal LM twice

// c[key] or `fallback` when absent or null (PEFT writes many null fields).
template <class T> T field(const json& c, const char* key, T fallback, const std::string& ctx) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  try {
    return c[key].get<T>();
  } catch (const json::exception&) {
    throw Error(ctx + ": field \"" + key + "\" has the wrong type (" + c[key].dump() + ")");
  }
}

void check_targets(const std::vector<std::string>& t) {
  VIMO_CHECK(!t.empty(), "LoRA needs at least one target projection (lora.targets)");
  for (const auto& k : t)
    VIMO_CHECK(std::find(kKinds.begin(), kKinds.end(), k) != kKinds.end(),
               "LoRA target '" + k + "' is not a Llama projection (use q_proj k_proj v_proj o_proj gate_proj up_proj down_proj)");
}
}  // namespace

int64_t apply_lora(LlamaForCausalLM& m, const LoraOptions& o, bool freeze) {
  check_targets(o.targets);
  VIMO_CHECK(o.rank > 0, "LoRA rank must be positive");
  torch::manual_seed(o.seed);  // the A matrices' initial values
  auto projs = m->projections(o.targets);
  for (auto& p : projs) p->add_lora(o.rank, o.alpha, o.dropout, o.rslora);
  if (freeze) m->freeze_base();
  return static_cast<int64_t>(projs.size());
}

void save_adapter(LlamaForCausalLM& m, const std::string& dir, const std::string& base_model) {
  core::ensure_writable_dir(dir);
  std::vector<std::string> names;
  auto projs = m->projections(kKinds, &names);
  core::NamedTensors out;
  std::set<std::string> kinds;
  LoraOptions o;
  double alpha = 0;
  for (size_t i = 0; i < projs.size(); ++i) {
    auto& p = projs[i];
    if (!p->has_lora()) continue;
    VIMO_CHECK(!p->merged, "cannot save an adapter while it is merged into '" + names[i] + "'; unmerge first");
    out.emplace_back(kPrefix + names[i] + ".lora_A.weight", p->lora_A->weight.detach());
    out.emplace_back(kPrefix + names[i] + ".lora_B.weight", p->lora_B->weight.detach());
    kinds.insert(names[i].substr(names[i].rfind('.') + 1));
    o.rank = p->rank;
    o.dropout = p->dropout;
    alpha = p->alpha;
    o.rslora = p->rslora;
  }
  VIMO_CHECK(!out.empty(), "the model has no LoRA adapters to save (apply_lora first)");
  json mts = nullptr;
  const auto& emb = m->model->embed_tokens;
  if (emb->tail.defined() && emb->tail.size(0) > 0) {  // new vocabulary rows are trained: save them whole
    out.emplace_back(kPrefix + "model.embed_tokens.weight", emb->full().detach());
    mts = json::array({"embed_tokens", "lm_head"});
    // A tied head is saved too (the same matrix): PEFT would otherwise keep the resized base's head rows.
    out.emplace_back(kPrefix + "lm_head.weight", (m->lm_head ? m->lm_head->full() : emb->full()).detach());
  }
  json cfg = {{"peft_type", "LORA"},
              {"task_type", "CAUSAL_LM"},
              {"base_model_name_or_path", base_model},
              {"r", o.rank},
              {"lora_alpha", alpha},
              {"lora_dropout", o.dropout},
              {"target_modules", std::vector<std::string>(kinds.begin(), kinds.end())},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"use_rslora", o.rslora},
              {"init_lora_weights", true},
              {"modules_to_save", mts},
              {"ensure_weight_tying", !m->lm_head && !mts.is_null()},
              {"inference_mode", true}};
  core::save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), out, {{"format", "pt"}});
  core::write_file_atomic((fs::path(dir) / "adapter_config.json").string(), cfg.dump(2) + "\n");
}

LoraOptions load_adapter(LlamaForCausalLM& m, const std::string& dir) {
  const auto cfg_path = fs::path(dir) / "adapter_config.json";
  const auto w_path = fs::path(dir) / "adapter_model.safetensors";
  VIMO_CHECK(fs::exists(cfg_path), "adapter directory '" + dir + "' has no adapter_config.json");
  VIMO_CHECK(fs::exists(w_path), "adapter directory '" + dir + "' has no adapter_model.safetensors");
  const std::string ctx = "'" + cfg_path.string() + "'";
  json c;
  try {
    c = json::parse(core::read_file(cfg_path.string()));
  } catch (const json::exception& e) {
    throw Error(ctx + " is not valid JSON: " + e.what());
  }
  VIMO_CHECK(field(c, "peft_type", std::string("LORA"), ctx) == "LORA", ctx + ": peft_type must be LORA");
  VIMO_CHECK(!field(c, "fan_in_fan_out", false, ctx), ctx + ": fan_in_fan_out adapters are not supported");
  VIMO_CHECK(field(c, "bias", std::string("none"), ctx) == "none", ctx + ": only bias \"none\" is supported");
  VIMO_CHECK(!field(c, "use_dora", false, ctx), ctx + ": DoRA adapters are not supported (plain LoRA only)");
  VIMO_CHECK(!field(c, "lora_bias", false, ctx), ctx + ": LoRA biases (lora_bias) are not supported");
  LoraOptions o;
  o.rank = field(c, "r", int64_t{8}, ctx);
  o.alpha = field(c, "lora_alpha", 8.0, ctx);
  o.dropout = field(c, "lora_dropout", 0.0, ctx);
  o.rslora = field(c, "use_rslora", false, ctx);
  VIMO_CHECK(!c.contains("rank_pattern") || c["rank_pattern"].is_null() || c["rank_pattern"].empty(), ctx + ": rank_pattern is not supported");
  VIMO_CHECK(!c.contains("alpha_pattern") || c["alpha_pattern"].is_null() || c["alpha_pattern"].empty(), ctx + ": alpha_pattern is not supported");
  auto st = core::SafeTensors::open(w_path.string());
  // Which projections: those that have weights in the file (covers list and regex target_modules).
  std::vector<std::string> names;
  auto projs = m->projections(kKinds, &names);
  std::set<std::string> used;
  int64_t attached = 0;
  torch::NoGradGuard g;
  for (size_t i = 0; i < projs.size(); ++i) {
    const std::string a = kPrefix + names[i] + ".lora_A.weight", b = kPrefix + names[i] + ".lora_B.weight";
    if (!st.contains(a) && !st.contains(b)) continue;
    VIMO_CHECK(st.contains(a) && st.contains(b), "'" + w_path.string() + "' has only one of " + a + " / " + b);
    auto& p = projs[i];
    auto ta = st.get(a), tb = st.get(b);
    VIMO_CHECK(ta.dim() == 2 && tb.dim() == 2 && ta.size(0) == tb.size(1) && ta.size(1) == p->weight.size(1) &&
                   tb.size(0) == p->weight.size(0),
               "'" + w_path.string() + "': " + names[i] + " adapter shapes do not fit the base weight (wrong base model?)");
    if (!p->has_lora()) p->add_lora(ta.size(0), o.alpha, o.dropout, o.rslora);
    VIMO_CHECK(p->rank == ta.size(0), "adapter rank of " + names[i] + " differs from the attached adapter");
    p->lora_A->weight.copy_(ta);
    p->lora_B->weight.copy_(tb);
    used.insert(a);
    used.insert(b);
    ++attached;
  }
  VIMO_CHECK(attached > 0, "'" + w_path.string() + "' holds no LoRA weights for this model's projections");
  auto full = [&](const std::string& key, Embedding& e) {
    if (!st.contains(key)) return;
    auto t = st.get(key);
    const int64_t v0 = e->weight.size(0);
    VIMO_CHECK(t.dim() == 2 && t.size(1) == e->weight.size(1) && t.size(0) >= v0,
               "'" + w_path.string() + "': " + key + " " + std::to_string(t.size(0)) + " rows do not fit the base model");
    e->fold_tail();
    e->weight.narrow(0, 0, std::min(v0, t.size(0))).copy_(t.narrow(0, 0, std::min(v0, t.size(0))));
    if (t.size(0) > e->weight.size(0)) e->set_tail(t.narrow(0, e->weight.size(0), t.size(0) - e->weight.size(0)).to(e->weight.options().requires_grad(false)).clone());
    used.insert(key);
  };
  full(kPrefix + "model.embed_tokens.weight", m->model->embed_tokens);
  if (m->lm_head) full(kPrefix + "lm_head.weight", m->lm_head);
  else if (st.contains(kPrefix + "lm_head.weight")) used.insert(kPrefix + "lm_head.weight");  // the tied head's copy
  m->mutable_config().vocab_size = m->model->embed_tokens->size();
  for (const auto& n : st.names())
    VIMO_CHECK(used.count(n), "'" + w_path.string() + "' holds tensor '" + n + "' that vimo cannot place (wrong base model?)");
  return o;
}

LoraOptions lora_options(const LmLoraSection& s, uint64_t seed) {
  LoraOptions o;
  o.rank = s.rank;
  o.alpha = s.alpha;
  o.dropout = s.dropout;
  o.targets = s.targets;
  o.rslora = s.rslora;
  o.seed = seed;
  return o;
}

void merge_lora(LlamaForCausalLM& m) {
  for (auto& p : m->projections(kKinds)) p->merge();
}

void unmerge_lora(LlamaForCausalLM& m) {
  for (auto& p : m->projections(kKinds)) p->unmerge();
}

}  // namespace vimo::lm

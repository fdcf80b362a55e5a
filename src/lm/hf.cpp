// Loading and saving HF Llama checkpoint directories through core::SafeTensors.
#include "vimo/lm/hf.h"

#include <filesystem>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::lm {
namespace {
std::string shape_str(c10::IntArrayRef s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}
}  // namespace

LlamaForCausalLM load_pretrained(const std::string& dir, const LoadOptions& opt, CheckpointLayout* layout) {
  const fs::path d(dir);
  VIMO_CHECK(fs::is_directory(d), "model directory '" + dir + "' does not exist");
  const auto cfg_path = d / "config.json";
  VIMO_CHECK(fs::exists(cfg_path), "'" + dir + "' has no config.json (expected a Hugging Face Llama directory)");
  LlamaConfig cfg = LlamaConfig::load(cfg_path.string());
  const auto index = d / "model.safetensors.index.json", single = d / "model.safetensors";
  std::string weights;
  if (fs::exists(index)) weights = index.string();
  else if (fs::exists(single)) weights = single.string();
  else throw Error("'" + dir + "' has neither model.safetensors nor model.safetensors.index.json");
  auto st = core::SafeTensors::open(weights);

  const auto dtype = opt.dtype ? *opt.dtype : dtype_from_name(cfg.torch_dtype, "'" + cfg_path.string() + "' torch_dtype");
  cfg.torch_dtype = dtype_name(dtype);
  LlamaForCausalLM m(cfg, torch::TensorOptions().dtype(dtype).device(opt.device));
  auto params = m->hf_params();
  std::vector<std::string> missing, mismatched;
  std::set<std::string> expected;
  for (auto& [name, p] : params) {
    expected.insert(name);
    if (!st.contains(name)) {
      missing.push_back(name);
      continue;
    }
    const auto& info = st.info(name);
    if (c10::IntArrayRef(info.shape) != p.sizes())
      mismatched.push_back(name + " is " + shape_str(info.shape) + " in the file, the config needs " + shape_str(p.sizes()));
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size(); ++i) list += (i ? ", " : "") + missing[i];
    throw Error("'" + weights + "' lacks " + std::to_string(missing.size()) + " tensor(s) the config requires: " + list +
                " (is config.json from the same model?)");
  }
  if (!mismatched.empty()) {
    std::string list;
    for (size_t i = 0; i < mismatched.size(); ++i) list += (i ? "; " : "") + mismatched[i];
    throw Error("'" + weights + "' does not match '" + cfg_path.string() + "': " + list);
  }
  std::vector<std::string> unexpected;
  for (const auto& n : st.names())
    if (!expected.count(n) && n.find("rotary_emb.inv_freq") == std::string::npos &&
        !(cfg.tie_word_embeddings && n == "lm_head.weight"))
      unexpected.push_back(n);
  if (!unexpected.empty()) {
    std::string list;
    for (size_t i = 0; i < unexpected.size() && i < 10; ++i) list += (i ? ", " : "") + unexpected[i];
    throw Error("'" + weights + "' holds " + std::to_string(unexpected.size()) + " tensor(s) a Llama model does not have: " +
                list + " (a LoRA adapter? load it with --adapter)");
  }
  torch::NoGradGuard g;
  for (auto& [name, p] : params) {
    auto t = st.get(name);
    if (t.scalar_type() == dtype && opt.device.is_cpu()) p.set_data(t);  // a view of the map: no copy
    else p.copy_(t);
  }
  if (layout) {
    layout->weight_map.clear();
    if (weights == index.string())
      for (const auto& n : st.names()) layout->weight_map[n] = fs::path(st.info(n).file).filename().string();
  }
  vimo::log::debug("loaded ", params.size(), " tensors from ", weights);
  return m;
}

void save_pretrained(LlamaForCausalLM& m, const std::string& dir, const SaveOptions& opt, const CheckpointLayout* layout) {
  core::ensure_writable_dir(dir);
  const fs::path d(dir);
  LlamaConfig cfg = m->config();
  const auto dtype = opt.dtype ? *opt.dtype : m->dtype();
  cfg.torch_dtype = dtype_name(dtype);
  auto state = m->hf_state();
  for (auto& [n, t] : state) t = t.to(torch::kCPU, dtype);

  // Decide the files: the loaded layout, or greedy shards of max_shard_bytes, or one file.
  std::map<std::string, std::string> file_of;
  if (opt.max_shard_bytes > 0) {
    int64_t used = 0, shard = 0;
    std::vector<int> shard_of;
    for (auto& [n, t] : state) {
      const int64_t b = t.numel() * t.element_size();
      if (used > 0 && used + b > opt.max_shard_bytes) ++shard, used = 0;
      used += b;
      shard_of.push_back(static_cast<int>(shard));
    }
    char buf[64];
    for (size_t i = 0; i < state.size(); ++i) {
      std::snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, static_cast<int>(shard + 1));
      file_of[state[i].first] = buf;
    }
  } else if (layout && !layout->weight_map.empty()) {
    for (auto& [n, t] : state) {
      auto it = layout->weight_map.find(n);
      file_of[n] = it != layout->weight_map.end() ? it->second : layout->weight_map.begin()->second;
    }
  }
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  if (file_of.empty()) {
    core::save_safetensors((d / "model.safetensors").string(), state, meta);
    if (fs::exists(d / "model.safetensors.index.json")) fs::remove(d / "model.safetensors.index.json");
  } else {
    std::map<std::string, core::NamedTensors> per_file;
    int64_t total = 0;
    for (auto& [n, t] : state) {
      per_file[file_of[n]].emplace_back(n, t);
      total += t.numel() * t.element_size();
    }
    for (auto& [f, ts] : per_file) core::save_safetensors((d / f).string(), ts, meta);
    json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", file_of}};
    core::write_file_atomic((d / "model.safetensors.index.json").string(), idx.dump(2) + "\n");
    if (fs::exists(d / "model.safetensors")) fs::remove(d / "model.safetensors");
  }
  core::write_file_atomic((d / "config.json").string(), cfg.to_json().dump(2) + "\n");
  if (!fs::exists(d / "generation_config.json")) {
    json g = {{"_from_model_config", true}};
    if (cfg.bos_token_id) g["bos_token_id"] = *cfg.bos_token_id;
    if (!cfg.eos_token_id.empty()) g["eos_token_id"] = cfg.eos_token_id.size() == 1 ? json(cfg.eos_token_id[0]) : json(cfg.eos_token_id);
    core::write_file_atomic((d / "generation_config.json").string(), g.dump(2) + "\n");
  }
}

LlamaForCausalLM build_random(const LlamaConfig& c, double std, uint64_t seed, torch::Device device) {
  LlamaForCausalLM m(c);
  m->init_weights(std, seed);
  if (!device.is_cpu()) m->to(device);
  return m;
}

}  // namespace vimo::lm

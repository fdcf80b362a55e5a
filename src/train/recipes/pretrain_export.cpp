// Export of an LM run: merged/ (a full HF directory with the unified tokenizer) and adapter/ (PEFT).
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/train/recipes/pretrain.h"
#include "vimo/vim/model.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::train {
namespace {

// The token text an id of the unified vocabulary gets in an HF tokenizer: the special's name, or
// <motion_q{q}_k{k}> for motion codes.
std::string hf_token(const text::UnifiedVocab& v, int id) {
  const auto info = v.info(id);
  if (info.kind == text::TokenKind::kMotion) return "<motion_q" + std::to_string(info.q) + "_k" + std::to_string(info.k) + ">";
  const std::string n = v.name(id);
  return n.empty() ? "<unused_" + std::to_string(id) + ">" : n;
}

// Writes the text tokenizer of the run with every id past the text ids as an added special token.
void write_tokenizer(const vim::VimModel& m, const fs::path& lm_dir, const fs::path& out) {
  const auto& v = m.vocab();
  const fs::path src = lm_dir / m.spec().text_file;
  json added_decoder = json::object();
  json added = json::array();
  for (int id = v.text_size(); id < v.size(); ++id) {
    json t = {{"id", id}, {"content", hf_token(v, id)}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
              {"normalized", false}, {"special", true}};
    added.push_back(t);
    json d = t;
    d.erase("id");
    added_decoder[std::to_string(id)] = d;
  }
  json cfg = {{"added_tokens_decoder", added_decoder}, {"model_max_length", m.spec().base == "scratch" ? 1024 : 131072},
              {"clean_up_tokenization_spaces", false}};
  if (auto bos = m.text().bos_id()) cfg["bos_token"] = m.text().id_to_token(*bos);
  cfg["eos_token"] = hf_token(v, v.special(v.chat_format() == "llama3" ? "<|eot_id|>" : "<|end|>"));
  cfg["pad_token"] = v.find_special("<pad>") && *v.find_special("<pad>") >= v.text_size()
                         ? hf_token(v, v.special("<pad>")) : m.text().id_to_token(v.special("<pad>"));
  if (m.text().kind() == "hf_bpe") {
    json tok;
    try {
      tok = json::parse(core::read_file(src.string()));
    } catch (const json::exception& e) {
      throw Error("'" + src.string() + "' is not valid JSON: " + e.what());
    }
    if (!tok.contains("added_tokens") || tok["added_tokens"].is_null()) tok["added_tokens"] = json::array();
    for (const auto& t : added) tok["added_tokens"].push_back(t);
    core::write_file_atomic((out / "tokenizer.json").string(), tok.dump() + "\n");
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
  } else {
    fs::copy_file(src, out / "tokenizer.model", fs::copy_options::overwrite_existing);
    json at = json::object();
    for (const auto& t : added) at[t["content"].get<std::string>()] = t["id"];
    core::write_file_atomic((out / "added_tokens.json").string(), at.dump(2) + "\n");
    cfg["tokenizer_class"] = "LlamaTokenizer";
    cfg["add_bos_token"] = true;
    cfg["add_eos_token"] = false;
    cfg["legacy"] = false;
  }
  core::write_file_atomic((out / "tokenizer_config.json").string(), cfg.dump(2) + "\n");
}

}  // namespace

void export_run(const std::string& run_dir, const std::string& merged_dir, int64_t max_shard_bytes) {
  auto m = vim::VimModel::load_run(run_dir, torch::kCPU);
  const fs::path run(run_dir), lm_dir = run / "lm";
  const auto& spec = m.spec();
  auto& lm = m.lm();
  auto out_dtype = lm::dtype_from_name(lm::LlamaConfig::load((lm_dir / "config.json").string()).torch_dtype, "lm/config.json");
  if (spec.lora) {
    const fs::path adapter = run / "adapter", tmp = run / "adapter.tmp";
    fs::remove_all(tmp);
    lm::save_adapter(lm, tmp.string(), spec.base);
    fs::remove_all(adapter);
    fs::rename(tmp, adapter);
    log::info("wrote the PEFT adapter to ", adapter.string());
  }
  lm::merge_lora(lm);
  lm->fold_vocab_tail();
  const fs::path merged = merged_dir.empty() ? run / "merged" : fs::path(merged_dir);
  const fs::path tmp = merged.string() + ".tmp";
  fs::remove_all(tmp);
  lm::SaveOptions so;
  so.dtype = out_dtype;
  so.max_shard_bytes = max_shard_bytes;
  if (so.max_shard_bytes == 0) {  // shards of 5 GB (as transformers writes them) once one file would be larger
    int64_t bytes = 0;
    for (const auto& [n, t] : lm->hf_state()) bytes += t.numel() * c10::elementSize(out_dtype);
    if (bytes > 5'000'000'000LL) so.max_shard_bytes = 5'000'000'000LL;
  }
  lm::save_pretrained(lm, tmp.string(), so);
  write_tokenizer(m, lm_dir, tmp);
  if (spec.depth_head()) vim::save_depth_head(lm, (tmp / "depth_head.safetensors").string());
  fs::remove_all(merged);
  fs::rename(tmp, merged);
  log::info("wrote the merged HF model (", lm->config().vocab_size, " ids) to ", merged.string());
}

}  // namespace vimo::train

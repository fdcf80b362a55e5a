// Unified vocabulary layout, vocab.json reading/writing, and id -> (kind, q, k).
#include "vimo/text/vocab.h"

#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace vimo::text {

using json = nlohmann::json;

const std::vector<std::string>& vimo_special_names() {
  static const std::vector<std::string> n = {"<motion>", "</motion>", "<motion_a>", "</motion_a>",
                                             "<motion_b>", "</motion_b>", "<|system|>", "<|user|>",
                                             "<|assistant|>", "<|end|>", "<pad>"};
  return n;
}

const std::vector<std::string>& llama3_chat_names() {
  // Llama 3 tokenizer.json special tokens (meta-llama/Meta-Llama-3-8B).
  static const std::vector<std::string> n = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                             "<|eot_id|>"};
  return n;
}

MotionLayout read_motion_layout(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) {
    file.clear();
    for (const char* n : {"architecture.json", "config.json"})
      if (std::filesystem::exists(std::filesystem::path(path) / n)) {
        file = (std::filesystem::path(path) / n).string();
        break;
      }
    VIMO_CHECK(!file.empty(), "no architecture.json or config.json in tokenizer run '" + path +
                                  "'; pass --codebook-size and --num-quantizers instead");
  }
  json j;
  try {
    j = json::parse(core::read_file(file));
  } catch (const json::exception& e) {
    throw Error("motion architecture '" + file + "' is not valid JSON: " + e.what());
  }
  const json& m = j.contains("codebook_size") ? j : j.value("model", json::object());
  VIMO_CHECK(m.contains("codebook_size") && m.contains("num_quantizers"),
             "motion architecture '" + file + "' lacks codebook_size / num_quantizers (top level or under \"model\")");
  MotionLayout l{m["codebook_size"].get<int>(), m["num_quantizers"].get<int>()};
  VIMO_CHECK(l.codebook_size > 0 && l.num_quantizers > 0, "motion architecture '" + file + "': codebook_size and num_quantizers must be positive");
  return l;
}

UnifiedVocab UnifiedVocab::build(const TextTokenizer& text, const MotionLayout& layout, int first_new_id) {
  VIMO_CHECK(layout.codebook_size > 0 && layout.num_quantizers > 0, "motion layout needs codebook_size > 0 and num_quantizers > 0");
  UnifiedVocab v;
  v.layout_ = layout;
  v.text_size_ = text.vocab_size();
  v.text_tokenizer_ = text.path();
  v.text_kind_ = text.kind();
  bool llama3 = true;
  for (const auto& n : llama3_chat_names()) llama3 = llama3 && text.token_to_id(n).has_value();
  if (llama3) {
    v.chat_format_ = "llama3";
    for (const auto& n : llama3_chat_names()) v.specials_[n] = *text.token_to_id(n), v.reused_[n] = n;
  }
  std::vector<int> reserved;  // Llama 3: <|reserved_special_token_0..247|> (ids vary by release)
  for (int i = 0;; ++i) {
    auto id = text.token_to_id("<|reserved_special_token_" + std::to_string(i) + "|>");
    if (!id) break;
    reserved.push_back(*id);
  }
  size_t next_reserved = 0;
  int next_new = std::max(v.text_size_, first_new_id);
  for (const auto& n : vimo_special_names()) {
    std::optional<int> own = text.token_to_id(n);
    if (n == "<pad>")
      for (const char* alias : {"<|pad|>", "<|finetune_right_pad_id|>"})
        if (!own) own = text.token_to_id(alias);
    if (own && text.is_special(*own)) {
      v.specials_[n] = *own, v.reused_[n] = text.id_to_token(*own);
    } else if (next_reserved < reserved.size()) {
      const int id = reserved[next_reserved++];
      v.specials_[n] = id, v.reused_[n] = text.id_to_token(id);
    } else {
      v.specials_[n] = next_new++;
    }
  }
  v.motion_base_ = next_new;
  for (const auto& [n, id] : v.specials_) v.special_names_[id] = n;
  return v;
}

void UnifiedVocab::save(const std::string& path) const {
  json j;
  j["format"] = "vimo-vocab";
  j["version"] = 1;
  j["text_tokenizer"] = {{"path", text_tokenizer_}, {"kind", text_kind_}, {"size", text_size_}};
  j["chat_format"] = chat_format_;
  j["specials"] = specials_;
  j["reused"] = reused_;
  j["motion"] = {{"base", motion_base_}, {"codebook_size", layout_.codebook_size}, {"num_quantizers", layout_.num_quantizers}};
  j["size"] = size();
  core::write_file_atomic(path, j.dump(2) + "\n");
}

UnifiedVocab UnifiedVocab::load(const std::string& path) {
  UnifiedVocab v;
  try {
    const json j = json::parse(core::read_file(path));
    VIMO_CHECK(j.value("format", "") == "vimo-vocab", "'" + path + "' is not a vimo vocab.json (\"format\" is not \"vimo-vocab\")");
    v.text_tokenizer_ = j.at("text_tokenizer").at("path").get<std::string>();
    v.text_kind_ = j.at("text_tokenizer").at("kind").get<std::string>();
    v.text_size_ = j.at("text_tokenizer").at("size").get<int>();
    v.chat_format_ = j.at("chat_format").get<std::string>();
    v.specials_ = j.at("specials").get<std::map<std::string, int>>();
    v.reused_ = j.value("reused", json::object()).get<std::map<std::string, std::string>>();
    v.motion_base_ = j.at("motion").at("base").get<int>();
    v.layout_ = {j.at("motion").at("codebook_size").get<int>(), j.at("motion").at("num_quantizers").get<int>()};
    VIMO_CHECK(j.at("size").get<int>() == v.size(), "'" + path + "': \"size\" disagrees with motion.base + K*Q");
  } catch (const json::exception& e) {
    throw Error("vocab.json '" + path + "' is malformed: " + e.what());
  }
  for (const auto& [n, id] : v.specials_) v.special_names_[id] = n;
  return v;
}

std::optional<int> UnifiedVocab::find_special(const std::string& name) const {
  auto it = specials_.find(name);
  return it == specials_.end() ? std::nullopt : std::optional<int>(it->second);
}

int UnifiedVocab::special(const std::string& name) const {
  auto id = find_special(name);
  if (id) return *id;
  std::string known;
  for (const auto& [n, i] : specials_) known += " " + n;
  throw Error("unknown special token '" + name + "'; this vocabulary has:" + known);
}

int UnifiedVocab::motion_id(int q, int k) const {
  VIMO_CHECK(q >= 0 && q < layout_.num_quantizers && k >= 0 && k < layout_.codebook_size,
             "motion code (q=" + std::to_string(q) + ", k=" + std::to_string(k) + ") is outside Q=" +
                 std::to_string(layout_.num_quantizers) + ", K=" + std::to_string(layout_.codebook_size));
  return motion_base_ + q * layout_.codebook_size + k;
}

TokenInfo UnifiedVocab::info(int id) const {
  VIMO_CHECK(id >= 0 && id < size(), "id " + std::to_string(id) + " is outside the unified vocabulary (0.." +
                                         std::to_string(size() - 1) + ")");
  if (id >= motion_base_) {
    const int r = id - motion_base_;
    return {TokenKind::kMotion, r / layout_.codebook_size, r % layout_.codebook_size};
  }
  if (id >= text_size_ || special_names_.count(id)) return {TokenKind::kSpecial, -1, -1};
  return {TokenKind::kText, -1, -1};
}

std::string UnifiedVocab::name(int id) const {
  const TokenInfo i = info(id);
  if (i.kind == TokenKind::kMotion) return "<m q=" + std::to_string(i.q) + " k=" + std::to_string(i.k) + ">";
  auto it = special_names_.find(id);
  return it == special_names_.end() ? "" : it->second;
}

void UnifiedVocab::check_text_tokenizer(const TextTokenizer& text) const {
  VIMO_CHECK(text.kind() == text_kind_ && text.vocab_size() == text_size_,
             "text tokenizer '" + text.path() + "' (" + text.kind() + ", " + std::to_string(text.vocab_size()) +
                 " ids) is not the one this vocabulary was built over (" + text_kind_ + ", " +
                 std::to_string(text_size_) + " ids, '" + text_tokenizer_ + "')");
}

}  // namespace vimo::text

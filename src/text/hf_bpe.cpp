// HF tokenizer.json byte-level BPE: reads the JSON (refusing what it does not implement, by
// field), splits on added tokens, pre-tokenizes with PCRE2, merges by rank, decodes bytes.
#include "vimo/text/hf_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <list>
#include <queue>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace vimo::text {
namespace {

using json = nlohmann::json;

// GPT-2's byte <-> printable character table (bytes_to_unicode in openai/gpt-2 encoder.py):
// printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
struct ByteTable {
  std::array<uint32_t, 256> to_char{};
  std::unordered_map<uint32_t, unsigned char> to_byte;
  ByteTable() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_char[b] = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      to_byte[to_char[b]] = static_cast<unsigned char>(b);
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// Decodes one code point of valid UTF-8 at s[i], advancing i.
uint32_t next_cp(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += static_cast<size_t>(n);
  return cp;
}

// A token's bytes as the ByteLevel decoder yields them: mapped back when every character is in
// the byte table, else the token text itself (what `tokenizers` does for such tokens).
std::string token_bytes(std::string_view tok) {
  const auto& t = byte_table();
  std::string out;
  for (size_t i = 0; i < tok.size();) {
    auto it = t.to_byte.find(next_cp(tok, i));
    if (it == t.to_byte.end()) return std::string(tok);
    out += static_cast<char>(it->second);
  }
  return out;
}

// Onig (used by `tokenizers`) reads \s as Unicode White_Space; PCRE2's \s also takes U+180E, so
// \s and \S are spelled out as the White_Space set.
std::string translate_pattern(const std::string& p) {
  const std::string ws = "\\t-\\r\\x{85}\\p{Zs}\\x{2028}\\x{2029}";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char n = p[++i];
      if (n == 's') out += in_class ? ws : "[" + ws + "]";
      else if (n == 'S' && !in_class) out += "[^" + ws + "]";
      else out += std::string(1, c) + n;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

std::string type_of(const json& j, const std::string& field, const std::string& file) {
  VIMO_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(),
             "tokenizer.json '" + file + "': " + field + " has no \"type\"");
  return j["type"].get<std::string>();
}

[[noreturn]] void refuse(const std::string& file, const std::string& field, const std::string& value,
                         const std::string& supported) {
  throw Error("tokenizer.json '" + file + "': " + field + " " + value + " is not supported (supported: " +
              supported + "); vimo reads byte-level BPE tokenizers such as Llama 3's and GPT-2's");
}

// The split pattern GPT-2's ByteLevel pre-tokenizer applies when use_regex is true.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace

// A compiled, JIT-ed PCRE2 pattern that cuts text into matches and the gaps between them.
class SplitRegex {
 public:
  SplitRegex(const std::string& pattern, bool literal, const std::string& where) {
    int err = 0;
    PCRE2_SIZE off = 0;
    const std::string p = literal ? pattern : translate_pattern(pattern);
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | (literal ? PCRE2_LITERAL : 0);
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), opts, &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(where + ": cannot compile the split pattern at offset " + std::to_string(off) + ": " +
                  reinterpret_cast<char*>(msg));
    }
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~SplitRegex() { pcre2_code_free(code_); }
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Appends the matches and the non-empty gaps of `s` to `out`, in order (behavior "Isolated").
  void split(std::string_view s, std::vector<std::string_view>& out) const {
    thread_local pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
    size_t pos = 0, last = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    while (pos <= s.size()) {
      const int rc = jit_ ? pcre2_jit_match(code_, subject, s.size(), pos, 0, md, nullptr)
                          : pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t b = ov[0], e = ov[1];
      if (b > last) out.push_back(s.substr(last, b - last));
      if (e > b) out.push_back(s.substr(b, e - b));
      last = e;
      if (e > b) {
        pos = e;
      } else {  // an empty match: step over one character
        if (e >= s.size()) break;
        size_t i = e;
        next_cp(s, i);
        pos = i;
      }
    }
    if (last < s.size()) out.push_back(s.substr(last));
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

HfBpeTokenizer::HfBpeTokenizer(const std::string& path) : path_(path) {
  try {
    load(core::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error("tokenizer.json '" + path + "' is malformed: " + e.what());
  }
}
HfBpeTokenizer::~HfBpeTokenizer() = default;

void HfBpeTokenizer::load(const std::string& text) {
  const std::string& f = path_;
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw Error("tokenizer.json '" + f + "' is not valid JSON: " + e.what());
  }
  // model
  VIMO_CHECK(j.contains("model") && j["model"].is_object(), "tokenizer.json '" + f + "' has no \"model\" object");
  const json& m = j["model"];
  const std::string mtype = m.contains("type") ? m["type"].get<std::string>() : (m.contains("merges") ? "BPE" : "?");
  if (mtype != "BPE") refuse(f, "model.type", "\"" + mtype + "\"", "BPE");
  if (m.contains("dropout") && !m["dropout"].is_null()) refuse(f, "model.dropout", m["dropout"].dump(), "null");
  if (m.value("byte_fallback", false)) refuse(f, "model.byte_fallback", "true", "false");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(k) && !m[k].is_null() && !m[k].get<std::string>().empty())
      refuse(f, std::string("model.") + k, m[k].dump(), "null");
  ignore_merges_ = m.value("ignore_merges", false);
  VIMO_CHECK(m.contains("vocab") && m["vocab"].is_object(), "tokenizer.json '" + f + "': model.vocab is missing");
  // Ids index tables sized by the largest one: each must be a non-negative integer of sane size.
  constexpr int64_t kMaxId = 1 << 24;
  auto checked_id = [&](const json& v, const std::string& where) {
    VIMO_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < kMaxId,
               "tokenizer.json '" + f + "': " + where + " has id " + v.dump() + "; ids must be integers in 0.." +
                   std::to_string(kMaxId - 1) + " (is the file corrupt?)");
    return static_cast<int>(v.get<int64_t>());
  };
  int size = 0;
  for (const auto& [tok, id] : m["vocab"].items()) size = std::max(size, checked_id(id, "model.vocab[\"" + tok + "\"]") + 1);
  const json added = j.value("added_tokens", json::array());
  for (const auto& a : added) {
    VIMO_CHECK(a.is_object() && a.contains("id") && a.contains("content"),
               "tokenizer.json '" + f + "': an added_tokens entry lacks \"id\" or \"content\": " + a.dump());
    size = std::max(size, checked_id(a["id"], "added_tokens (\"" + a["content"].dump() + "\")") + 1);
  }
  id_to_bytes_.assign(static_cast<size_t>(size), "");
  id_to_token_.assign(static_cast<size_t>(size), "");
  special_.assign(static_cast<size_t>(size), false);
  for (const auto& [tok, idj] : m["vocab"].items()) {
    const int id = idj.get<int>();
    id_to_token_[id] = tok;
    id_to_bytes_[id] = token_bytes(tok);
    bytes_to_id_[id_to_bytes_[id]] = id;
    token_to_id_[tok] = id;
  }
  const json merges = m.value("merges", json::array());
  merges_.reserve(merges.size() * 2);
  int rank = 0;
  for (const auto& mj : merges) {
    std::string a, b;
    if (mj.is_array()) {
      a = mj.at(0).get<std::string>(), b = mj.at(1).get<std::string>();
    } else {
      const std::string s = mj.get<std::string>();
      const size_t sp = s.find(' ', 1);
      VIMO_CHECK(sp != std::string::npos, "tokenizer.json '" + f + "': model.merges[" + std::to_string(rank) +
                                              "] \"" + s + "\" is not two tokens separated by a space");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    }
    auto ia = token_to_id_.find(a), ib = token_to_id_.find(b), iab = token_to_id_.find(a + b);
    VIMO_CHECK(ia != token_to_id_.end() && ib != token_to_id_.end() && iab != token_to_id_.end(),
               "tokenizer.json '" + f + "': model.merges[" + std::to_string(rank) + "] (\"" + a + "\", \"" + b +
                   "\") names a token missing from model.vocab");
    const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
    merges_.emplace(key, std::make_pair(rank, iab->second));
    ++rank;
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    auto it = token_to_id_.find(m["unk_token"].get<std::string>());
    if (it != token_to_id_.end()) unk_ = it->second;
  }
  // added tokens
  for (const auto& a : added) {
    Added t;
    t.content = a.at("content").get<std::string>();
    t.id = a.at("id").get<int>();
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false), t.rstrip = a.value("rstrip", false);
    t.single_word = a.value("single_word", false);
    id_to_token_[t.id] = t.content;
    id_to_bytes_[t.id] = token_bytes(t.content);
    token_to_id_[t.content] = t.id;
    special_[t.id] = t.special;
    if (!t.content.empty()) added_.push_back(t);
  }
  for (const auto& a : added_) added_first_[static_cast<unsigned char>(a.content[0])] = true;
  byte_id_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = bytes_to_id_.find(std::string(1, static_cast<char>(b)));
    if (it != bytes_to_id_.end()) byte_id_[b] = it->second;
  }
  // Longest first, so the first hit at a position is the leftmost-longest match.
  std::stable_sort(added_.begin(), added_.end(),
                   [](const Added& x, const Added& y) { return x.content.size() > y.content.size(); });
  // normalizer
  if (j.contains("normalizer") && !j["normalizer"].is_null())
    refuse(f, "normalizer.type", "\"" + type_of(j["normalizer"], "normalizer", f) + "\"", "null");
  // pre_tokenizer
  std::function<void(const json&, const std::string&)> add_pre = [&](const json& p, const std::string& field) {
    const std::string t = type_of(p, field, f);
    if (t == "Sequence") {
      const json& list = p.at("pretokenizers");
      for (size_t i = 0; i < list.size(); ++i) add_pre(list[i], field + ".pretokenizers[" + std::to_string(i) + "]");
    } else if (t == "ByteLevel") {
      if (p.value("add_prefix_space", false)) pre_steps_.push_back({nullptr, true});
      if (p.value("use_regex", true))
        pre_steps_.push_back({std::make_shared<SplitRegex>(kGpt2Pattern, false, "tokenizer.json '" + f + "': " + field), false});
    } else if (t == "Split") {
      const std::string behavior = p.value("behavior", "Isolated");
      if (behavior != "Isolated") refuse(f, field + ".behavior", "\"" + behavior + "\"", "Isolated");
      if (p.value("invert", false)) refuse(f, field + ".invert", "true", "false");
      const json& pat = p.at("pattern");
      const bool literal = pat.contains("String");
      VIMO_CHECK(literal || pat.contains("Regex"), "tokenizer.json '" + f + "': " + field + ".pattern has neither Regex nor String");
      const std::string s = pat.at(literal ? "String" : "Regex").get<std::string>();
      pre_steps_.push_back({std::make_shared<SplitRegex>(s, literal, "tokenizer.json '" + f + "': " + field + ".pattern"), false});
    } else {
      refuse(f, field + ".type", "\"" + t + "\"", "ByteLevel, Split, Sequence");
    }
  };
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) add_pre(j["pre_tokenizer"], "pre_tokenizer");
  // decoder: ByteLevel (token_bytes above) or absent
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    const std::string t = type_of(j["decoder"], "decoder", f);
    if (t != "ByteLevel") refuse(f, "decoder.type", "\"" + t + "\"", "ByteLevel, null");
  } else {
    for (size_t i = 0; i < id_to_token_.size(); ++i) id_to_bytes_[i] = id_to_token_[i];
  }
  // post_processor: only TemplateProcessing changes ids (its "single" template)
  std::function<void(const json&, const std::string&)> add_post = [&](const json& p, const std::string& field) {
    const std::string t = type_of(p, field, f);
    if (t == "Sequence") {
      const json& list = p.at("processors");
      for (size_t i = 0; i < list.size(); ++i) add_post(list[i], field + ".processors[" + std::to_string(i) + "]");
    } else if (t == "TemplateProcessing") {
      bool after = false;
      for (const auto& item : p.at("single")) {
        if (item.contains("Sequence")) {
          after = true;
          continue;
        }
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        VIMO_CHECK(p.contains("special_tokens") && p["special_tokens"].contains(name),
                   "tokenizer.json '" + f + "': " + field + ".single names special token \"" + name +
                       "\" that is not in " + field + ".special_tokens");
        const json& sp = p["special_tokens"][name];
        for (const auto& id : sp.at("ids")) {
          const int v = checked_id(id, field + ".special_tokens[\"" + name + "\"]");
          VIMO_CHECK(v < size, "tokenizer.json '" + f + "': " + field + ".special_tokens[\"" + name + "\"] has id " +
                                   std::to_string(v) + ", outside the vocabulary (" + std::to_string(size) + " ids)");
          (after ? suffix_ids_ : prefix_ids_).push_back(v);
        }
      }
    } else if (t != "ByteLevel") {
      refuse(f, field + ".type", "\"" + t + "\"", "ByteLevel, TemplateProcessing, Sequence, null");
    }
  };
  if (j.contains("post_processor") && !j["post_processor"].is_null()) add_post(j["post_processor"], "post_processor");
  for (const char* k : {"truncation", "padding"})
    if (j.contains(k) && !j[k].is_null()) refuse(f, k, j[k].dump(), "null");
  if (!prefix_ids_.empty()) bos_ = prefix_ids_.front();
  if (!suffix_ids_.empty()) eos_ = suffix_ids_.front();
  for (const char* e : {"<|end_of_text|>", "<|endoftext|>", "</s>"})
    if (!eos_) eos_ = token_to_id(e);
}

std::vector<int> HfBpeTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text, "text given to tokenizer '" + path_ + "'");
  std::vector<int> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special) out.insert(out.end(), prefix_ids_.begin(), prefix_ids_.end());
  // Cut out added tokens (leftmost-longest), encoding the text between them.
  size_t start = 0, i = 0;
  auto ws = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80); };
  while (i < text.size() && !added_.empty()) {
    const Added* hit = nullptr;
    if (!added_first_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    for (const auto& a : added_) {
      if (text.compare(i, a.content.size(), a.content) != 0) continue;
      const size_t e = i + a.content.size();
      if (a.single_word && ((i > 0 && word(text[i - 1])) || (e < text.size() && word(text[e])))) continue;
      hit = &a;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t b = i, e = i + hit->content.size();
    if (hit->lstrip)
      while (b > start && ws(text[b - 1])) --b;
    if (hit->rstrip)
      while (e < text.size() && ws(text[e])) ++e;
    encode_segment(text.substr(start, b - start), out);
    out.push_back(hit->id);
    start = i = e;
  }
  encode_segment(text.substr(start), out);
  if (add_special) out.insert(out.end(), suffix_ids_.begin(), suffix_ids_.end());
  return out;
}

void HfBpeTokenizer::encode_segment(std::string_view text, std::vector<int>& out) const {
  if (text.empty()) return;
  // Reused between calls: encode() is hot and most segments are short.
  thread_local std::vector<std::string_view> pieces, next;
  std::list<std::string> owned;  // pieces that got a prefix space
  pieces.assign(1, text);
  for (const auto& step : pre_steps_) {
    next.clear();
    for (auto p : pieces) {
      if (step.prefix_space) {
        if (p.empty() || p[0] == ' ') next.push_back(p);
        else next.push_back(owned.emplace_back(" " + std::string(p)));
      } else {
        step.regex->split(p, next);
      }
    }
    pieces.swap(next);
  }
  for (auto p : pieces) encode_word(p, out);
}

void HfBpeTokenizer::encode_word(std::string_view w, std::vector<int>& out) const {
  if (w.empty()) return;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(w));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> ids;
  bpe(w, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= 100000) cache_.clear();  // bounded: long runs over varied text stay small
  cache_.emplace(std::string(w), std::move(ids));
}

void HfBpeTokenizer::bpe(std::string_view w, std::vector<int>& out) const {
  if (ignore_merges_) {
    auto it = bytes_to_id_.find(std::string(w));
    if (it != bytes_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a linked list over the bytes; merges are applied lowest rank first, leftmost on
  // ties, exactly as `tokenizers` (word.rs) does with its priority queue.
  struct Sym {
    int id, prev, next;
  };
  std::vector<Sym> s;
  s.reserve(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const int id = byte_id_[static_cast<unsigned char>(w[i])];
    if (id < 0) {
      if (unk_) s.push_back({*unk_, 0, 0});
      continue;
    }
    s.push_back({id, 0, 0});
  }
  const int n = static_cast<int>(s.size());
  for (int i = 0; i < n; ++i) s[i].prev = i - 1, s[i].next = i + 1 < n ? i + 1 : -1;
  using Cand = std::tuple<int, int, int>;  // (rank, pos, merged id)
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
  auto push = [&](int pos) {
    if (pos < 0 || s[pos].next < 0) return;
    const uint64_t key = (static_cast<uint64_t>(s[pos].id) << 32) | static_cast<uint32_t>(s[s[pos].next].id);
    auto it = merges_.find(key);
    if (it != merges_.end()) q.emplace(it->second.first, pos, it->second.second);
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> dead(static_cast<size_t>(n), false);
  while (!q.empty()) {
    const auto [rank, pos, merged] = q.top();
    q.pop();
    if (dead[pos] || s[pos].next < 0) continue;
    const int nx = s[pos].next;
    const uint64_t key = (static_cast<uint64_t>(s[pos].id) << 32) | static_cast<uint32_t>(s[nx].id);
    auto it = merges_.find(key);
    if (it == merges_.end() || it->second.second != merged) continue;
    s[pos].id = merged;
    s[pos].next = s[nx].next;
    if (s[nx].next >= 0) s[s[nx].next].prev = pos;
    dead[nx] = true;
    push(s[pos].prev);
    push(pos);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = s[i].next) out.push_back(s[i].id);
}

std::string HfBpeTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string bytes;
  for (int id : ids) {
    VIMO_CHECK(id >= 0 && id < vocab_size(), "id " + std::to_string(id) + " is outside the vocabulary of '" +
                                                 path_ + "' (0.." + std::to_string(vocab_size() - 1) + ")");
    if (skip_special && special_[id]) continue;
    bytes += id_to_bytes_[id];
  }
  return utf8_lossy(bytes);
}

std::string HfBpeTokenizer::id_to_token(int id) const {
  VIMO_CHECK(id >= 0 && id < vocab_size(), "id " + std::to_string(id) + " is outside the vocabulary of '" + path_ + "'");
  return id_to_token_[id];
}

std::optional<int> HfBpeTokenizer::token_to_id(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

bool HfBpeTokenizer::is_special(int id) const { return id >= 0 && id < vocab_size() && special_[id]; }

}  // namespace vimo::text

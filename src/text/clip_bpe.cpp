// CLIP's BPE tokenizer: the merges file (gzip or plain), open_clip's text cleaning (a subset of ftfy,
// html.unescape, whitespace, lowercase), the split pattern through PCRE2, and merges by rank.
#include "vimo/text/clip_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <zlib.h>

#include <array>
#include <cctype>
#include <fstream>

#include "clip_unicode.h"
#include "vimo/core/error.h"

namespace vimo::text {

// A compiled PCRE2 pattern (UTF, UCP, JIT when available) with findall and remove-all.
class ClipSplitRegex {
 public:
  ClipSplitRegex(const std::string& p, uint32_t opts) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | opts, &err, &off, nullptr);
    VIMO_CHECK(code_, "CLIP tokenizer: cannot compile pattern at offset " + std::to_string(off));
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~ClipSplitRegex() { pcre2_code_free(code_); }
  ClipSplitRegex(const ClipSplitRegex&) = delete;
  ClipSplitRegex& operator=(const ClipSplitRegex&) = delete;

  // Calls f(begin, end) for each non-overlapping match, left to right (as re.findall).
  template <class F>
  void each(std::string_view s, F&& f) const {
    thread_local pcre2_match_data* md = pcre2_match_data_create(2, nullptr);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;
    while (pos < s.size()) {
      const int rc = jit_ ? pcre2_jit_match(code_, subject, s.size(), pos, 0, md, nullptr)
                          : pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) break;  // the patterns here never match empty
      f(ov[0], ov[1]);
      pos = ov[1];
    }
  }
  std::string remove_all(std::string_view s) const {
    std::string out;
    size_t last = 0;
    each(s, [&](size_t b, size_t e) {
      out.append(s.substr(last, b - last));
      last = e;
    });
    out.append(s.substr(last));
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
  bool jit_ = false;
};

namespace {

using unicode::Text;

constexpr int kMerges = 49152 - 256 - 2;  // merges CLIP uses: the vocabulary is 256 * 2 + these + 2
constexpr const char* kEndOfWord = "</w>";
const char* const kSpecials[2] = {"<start_of_text>", "<end_of_text>"};

// Python's str.isspace() (what str.split() and str.strip() cut on).
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
bool ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool ascii_alnum(char32_t c) { return ascii_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); }
int hex_value(char32_t c) {
  if (ascii_digit(c)) return static_cast<int>(c - '0');
  const char32_t l = c | 0x20;
  return l >= 'a' && l <= 'f' ? static_cast<int>(l - 'a' + 10) : -1;
}

void append_entity(Text& out, const unicode::EntityValue& v) {
  out += v.a;
  if (v.b) out += v.b;
}

// What html.unescape makes of the numeric reference `num` (saturated above 0x10FFFF).
void numeric_ref(Text& out, uint32_t num) {
  if (num == 0) out += 0xFFFD;
  else if (num == 0x0D) out += U'\r';
  else if (num >= 0x80 && num <= 0x9F) out += unicode::cp1252(num);
  else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) out += 0xFFFD;
  else if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) || num == 0x7F ||
           (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE) {
  }  // html.unescape's invalid code points become nothing
  else out += static_cast<char32_t>(num);
}

// Python's html.unescape: numeric references (';' optional), named ones (a legacy name also without
// ';' and as the prefix of a longer word).
Text html_unescape(const Text& t) {
  if (t.find(U'&') == Text::npos) return t;
  Text out;
  const size_t n = t.size();
  for (size_t i = 0; i < n;) {
    if (t[i] != U'&') {
      out += t[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < n && t[j] == U'#') {
      const bool hex = j + 2 < n && (t[j + 1] | 0x20) == U'x' && hex_value(t[j + 2]) >= 0;
      size_t k = hex ? j + 2 : j + 1;
      uint32_t num = 0;
      const size_t start = k;
      while (k < n && (hex ? hex_value(t[k]) >= 0 : ascii_digit(t[k]))) {
        const uint32_t d = static_cast<uint32_t>(hex ? hex_value(t[k]) : static_cast<int>(t[k] - '0'));
        num = num > 0x10FFFF ? num : num * (hex ? 16 : 10) + d;
        ++k;
      }
      if (k == start) {  // "&#" without digits: no reference
        out += t[i++];
        continue;
      }
      if (k < n && t[k] == U';') ++k;
      numeric_ref(out, num);
      i = k;
      continue;
    }
    size_t k = j;
    while (k < n && k - j < 32 && t[k] != U'\t' && t[k] != U'\n' && t[k] != U'\f' && t[k] != U' ' && t[k] != U'<' &&
           t[k] != U'&' && t[k] != U'#' && t[k] != U';')
      ++k;
    if (k == j) {
      out += t[i++];
      continue;
    }
    if (k < n && t[k] == U';') ++k;
    const Text s = t.substr(j, k - j);
    const auto* e = unicode::entity(unicode::to_utf8(s));
    if (e && e->html5) {
      append_entity(out, *e);
    } else {
      bool found = false;
      for (size_t x = s.size() - 1; x > 1 && !found; --x) {
        const auto* p = unicode::entity(unicode::to_utf8(s.substr(0, x)));
        if (p && p->html5) {
          append_entity(out, *p);
          out += s.substr(x);
          found = true;
        }
      }
      if (!found) out += U'&' + s;
    }
    i = k;
  }
  return out;
}

// ftfy's unescape_html: "&name;" from its table, "&#...;" when html.unescape takes it whole.
Text ftfy_unescape(const Text& t) {
  if (t.find(U'&') == Text::npos) return t;
  Text out;
  const size_t n = t.size();
  for (size_t i = 0; i < n;) {
    size_t k = i + 1;
    if (t[i] == U'&' && k < n && t[k] == U'#') ++k;
    const size_t start = k;
    while (t[i] == U'&' && k < n && k - start < 24 && ascii_alnum(t[k])) ++k;
    if (t[i] != U'&' || k == start || k >= n || t[k] != U';') {
      out += t[i++];
      continue;
    }
    const Text m = t.substr(i, k + 1 - i);
    const auto* e = m[1] == U'#' ? nullptr : unicode::entity(unicode::to_utf8(m.substr(1)));
    if (e && e->ftfy) {
      append_entity(out, *e);
    } else if (m[1] == U'#') {
      const Text u = html_unescape(m);
      out += u.find(U';') == Text::npos ? u : m;
    } else {
      out += m;
    }
    i = k + 1;
  }
  return out;
}

// ftfy's fix_latin_ligatures: the Latin ligatures and digraphs it takes apart.
const char32_t* ligature(char32_t c) {
  switch (c) {
    case 0x0132: return U"IJ";
    case 0x0133: return U"ij";
    case 0x0149: return U"\u02BCn";
    case 0x01C4: return U"D\u017D";
    case 0x01C5: return U"D\u017E";
    case 0x01C6: return U"d\u017E";
    case 0x01C7: return U"LJ";
    case 0x01C8: return U"Lj";
    case 0x01C9: return U"lj";
    case 0x01CA: return U"NJ";
    case 0x01CB: return U"Nj";
    case 0x01CC: return U"nj";
    case 0x01F1: return U"DZ";
    case 0x01F2: return U"Dz";
    case 0x01F3: return U"dz";
    case 0xFB00: return U"ff";
    case 0xFB01: return U"fi";
    case 0xFB02: return U"fl";
    case 0xFB03: return U"ffi";
    case 0xFB04: return U"ffl";
    case 0xFB05: return U"\u017Ft";
    case 0xFB06: return U"st";
    default: return nullptr;
  }
}

bool ftfy_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
         c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// One pass of ftfy's character fixes after unescape_html (in its order), each over the whole text.
Text ftfy_pass(Text t) {
  Text out;
  out.reserve(t.size());
  for (char32_t c : t) out += (c >= 0x80 && c <= 0x9F) ? unicode::cp1252(c) : c;  // fix_c1_controls
  t.swap(out);
  out.clear();
  for (char32_t c : t) {  // fix_latin_ligatures
    if (const char32_t* l = ligature(c)) out += l;
    else out += c;
  }
  t.swap(out);
  out.clear();
  for (char32_t c : t)  // fix_character_width
    if (!unicode::width_form(c, out)) out += c;
  t.swap(out);
  out.clear();
  for (char32_t c : t) {  // uncurl_quotes
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) out += U'\'';
    else if (c >= 0x201C && c <= 0x201F) out += U'"';
    else out += c;
  }
  t.swap(out);
  out.clear();
  for (size_t i = 0; i < t.size(); ++i) {  // fix_line_breaks
    const char32_t c = t[i];
    if (c == U'\r' && i + 1 < t.size() && t[i + 1] == U'\n') continue;
    out += (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85) ? U'\n' : c;
  }
  t.swap(out);
  out.clear();
  if (t.find(0x1B) != Text::npos) {  // remove_terminal_escapes
    static const ClipSplitRegex ansi(R"(\x{1b}\[(?:\d|;)*[a-zA-Z])", 0);
    t = unicode::from_utf8(ansi.remove_all(unicode::to_utf8(t)));
  }
  for (char32_t c : t)  // remove_control_chars
    if (!ftfy_control(c)) out += c;
  return unicode::nfc(out);
}

// ftfy.fix_text with its default settings, less fix_encoding (see clip_bpe.h): line by line, each
// line fixed until it stops changing.
Text ftfy_fix_text(const Text& t) {
  Text out;
  bool unescape = true;
  for (size_t pos = 0; pos < t.size();) {
    const size_t nl = t.find(U'\n', pos);
    const size_t end = nl == Text::npos ? t.size() : nl + 1;
    Text seg = t.substr(pos, end - pos);
    if (unescape && seg.find(U'<') != Text::npos) unescape = false;
    for (;;) {
      const Text before = seg;
      seg = ftfy_pass(unescape ? ftfy_unescape(seg) : seg);
      if (seg == before) break;
    }
    out += seg;
    pos = end;
  }
  return out;
}

// " ".join(t.split()): whitespace runs to one space, none at the ends.
Text collapse_whitespace(const Text& t) {
  Text out;
  bool gap = false;
  for (char32_t c : t) {
    if (py_space(c)) {
      gap = !out.empty();
      continue;
    }
    if (gap) out += U' ';
    gap = false;
    out += c;
  }
  return out;
}

// CLIP's byte <-> character table (GPT-2's bytes_to_unicode): printable Latin-1 bytes first, as
// themselves, then the other 68 bytes as U+0100.. in byte order. order[i] is the byte of id i.
struct ByteTable {
  std::array<unsigned char, 256> order{};
  std::array<char32_t, 256> to_char{};
  std::unordered_map<char32_t, unsigned char> to_byte;
  ByteTable() {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; ++b)
      if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) order[k++] = static_cast<unsigned char>(b);
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      to_char[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      if (!printable) order[k++] = static_cast<unsigned char>(b);
      to_byte[to_char[b]] = static_cast<unsigned char>(b);
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable t;
  return t;
}

// The bytes a token text stands for: each character through the byte table ("</w>" stays as is).
std::string token_bytes(const std::string& tok) {
  const auto& bt = byte_table();
  std::string out;
  for (char32_t c : unicode::from_utf8(tok)) {
    auto it = bt.to_byte.find(c);
    if (it != bt.to_byte.end()) out += static_cast<char>(it->second);
    else unicode::append_utf8(out, c);
  }
  return out;
}

// The merges file's text, through zlib (which reads a file that is not gzip as it is).
std::string read_merges(const std::string& path) {
  VIMO_CHECK(std::ifstream(path).good(), "cannot open CLIP merges file '" + path +
                                             "': pass bpe_simple_vocab_16e6.txt.gz (it ships with the open_clip "
                                             "Python package, next to open_clip/tokenizer.py)");
  gzFile f = gzopen(path.c_str(), "rb");
  VIMO_CHECK(f, "cannot open CLIP merges file '" + path + "'");
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int err = Z_OK;
  const std::string msg = gzerror(f, &err);
  gzclose(f);
  VIMO_CHECK(n == 0 && (err == Z_OK || err == Z_STREAM_END),
             "CLIP merges file '" + path + "' is not a valid gzip file (zlib: " + msg +
                 "); it is corrupt or truncated: copy bpe_simple_vocab_16e6.txt.gz again from the open_clip package");
  return out;
}

}  // namespace

ClipBpeTokenizer::ClipBpeTokenizer(const std::string& path) : path_(path) {
  const std::string text = read_merges(path);
  check_utf8(text, "CLIP merges file '" + path + "'");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(kMerges);
  size_t pos = text.find('\n');  // the first line is a header
  for (int line = 2; pos != std::string::npos && static_cast<int>(merges.size()) < kMerges; ++line) {
    const size_t b = pos + 1;
    pos = text.find('\n', b);
    const std::string_view l(text.data() + b, (pos == std::string::npos ? text.size() : pos) - b);
    std::vector<std::string> parts;
    for (size_t i = 0; i < l.size();) {
      while (i < l.size() && std::isspace(static_cast<unsigned char>(l[i]))) ++i;
      size_t e = i;
      while (e < l.size() && !std::isspace(static_cast<unsigned char>(l[e]))) ++e;
      if (e > i) parts.emplace_back(l.substr(i, e - i));
      i = e;
    }
    if (parts.empty() && pos == std::string::npos) break;  // the newline that ends the file
    VIMO_CHECK(parts.size() == 2, "CLIP merges file '" + path + "' line " + std::to_string(line) + " has " +
                                      std::to_string(parts.size()) +
                                      " symbols, not a merge's two: is it CLIP's bpe_simple_vocab_16e6.txt(.gz)?");
    merges.emplace_back(std::move(parts[0]), std::move(parts[1]));
  }
  VIMO_CHECK(static_cast<int>(merges.size()) == kMerges,
             "CLIP merges file '" + path + "' has " + std::to_string(merges.size() + 1) + " lines; CLIP's has a header and " +
                 std::to_string(kMerges) + " merges or more (bpe_simple_vocab_16e6.txt has 262145 lines): it is "
                 "truncated or another file; copy it again from the open_clip package");
  // Vocabulary: the 256 byte characters, the same with "</w>", the merges joined, the two specials.
  const auto& bt = byte_table();
  for (int i = 0; i < 512; ++i) {
    std::string s;
    unicode::append_utf8(s, bt.to_char[bt.order[i % 256]]);
    id_to_token_.push_back(i < 256 ? s : s + kEndOfWord);
  }
  for (int i = 0; i < 256; ++i) byte_id_[bt.order[i]] = i;
  for (const auto& [a, b] : merges) id_to_token_.push_back(a + b);
  for (const char* s : kSpecials) id_to_token_.emplace_back(s);
  for (size_t i = 0; i < id_to_token_.size(); ++i) {
    token_to_id_[id_to_token_[i]] = static_cast<int>(i);  // a repeated text keeps its last id
    id_to_bytes_.push_back(token_bytes(id_to_token_[i]));
  }
  for (size_t r = 0; r < merges.size(); ++r) {
    auto a = token_to_id_.find(merges[r].first), b = token_to_id_.find(merges[r].second);
    if (a == token_to_id_.end() || b == token_to_id_.end()) continue;  // can never apply
    const uint64_t key = (static_cast<uint64_t>(a->second) << 32) | static_cast<uint32_t>(b->second);
    merges_[key] = {static_cast<int>(r), token_to_id_.at(merges[r].first + merges[r].second)};
  }
  // open_clip's pattern; \s spelled out as Unicode White_Space, as the regex module reads it.
  const std::string ws = "\\t-\\r\\x{85}\\p{Zs}\\x{2028}\\x{2029}";
  split_ = std::make_unique<ClipSplitRegex>(std::string(kSpecials[0]) + "|" + kSpecials[1] +
                                                "|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^" + ws + "\\p{L}\\p{N}]+",
                                            PCRE2_CASELESS);
}

ClipBpeTokenizer::~ClipBpeTokenizer() = default;

std::string ClipBpeTokenizer::clean(std::string_view text) {
  Text t = html_unescape(html_unescape(ftfy_fix_text(unicode::from_utf8(text))));
  return unicode::to_utf8(unicode::lower(collapse_whitespace(t)));
}

void ClipBpeTokenizer::bpe(const std::string& word, std::vector<int>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> w;
  for (unsigned char b : word) w.push_back(byte_id_[b]);
  w.back() += 256;  // the last symbol carries "</w>"
  std::vector<int> next;
  while (w.size() > 1) {
    int best = -1, merged = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      auto it = merges_.find((static_cast<uint64_t>(w[i]) << 32) | static_cast<uint32_t>(w[i + 1]));
      if (it != merges_.end() && (best < 0 || it->second.first < best)) best = it->second.first, merged = it->second.second, at = i;
    }
    if (best < 0) break;
    const int first = w[at], second = w[at + 1];
    next.clear();
    for (size_t i = 0; i < w.size();) {
      if (w[i] == first && i + 1 < w.size() && w[i + 1] == second) {
        next.push_back(merged);
        i += 2;
      } else {
        next.push_back(w[i++]);
      }
    }
    w.swap(next);
  }
  out.insert(out.end(), w.begin(), w.end());
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_.size() >= 100000) cache_.clear();  // bounded over long runs of varied text
  cache_.emplace(word, std::move(w));
}

std::vector<int> ClipBpeTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text, "text");
  const std::string s = clean(text);
  std::vector<int> ids;
  if (add_special) ids.push_back(kSot);
  split_->each(s, [&](size_t b, size_t e) {
    const std::string tok = s.substr(b, e - b);
    if (tok == kSpecials[0]) ids.push_back(kSot);
    else if (tok == kSpecials[1]) ids.push_back(kEot);
    else bpe(tok, ids);
  });
  if (add_special) ids.push_back(kEot);
  return ids;
}

std::string ClipBpeTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string bytes;
  for (int id : ids) {
    VIMO_CHECK(id >= 0 && id < vocab_size(), "CLIP tokenizer: id " + std::to_string(id) + " is out of range 0.." +
                                                 std::to_string(vocab_size() - 1));
    if (skip_special && is_special(id)) continue;
    bytes += id_to_bytes_[static_cast<size_t>(id)];
  }
  std::string text = utf8_lossy(bytes), out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, kEndOfWord) == 0) {
      out += ' ';
      i += 4;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string ClipBpeTokenizer::id_to_token(int id) const {
  VIMO_CHECK(id >= 0 && id < vocab_size(), "CLIP tokenizer: id " + std::to_string(id) + " is out of range");
  return id_to_token_[static_cast<size_t>(id)];
}

std::optional<int> ClipBpeTokenizer::token_to_id(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<int64_t> clip_tokenize(const ClipBpeTokenizer& tok, std::string_view text, int context) {
  VIMO_CHECK(context >= 2, "CLIP context length must be at least 2, got " + std::to_string(context));
  const std::vector<int> ids = tok.encode(text, true);
  std::vector<int64_t> out(static_cast<size_t>(context), 0);
  const size_t n = std::min(ids.size(), out.size());
  std::copy(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), out.begin());
  if (ids.size() > out.size()) out.back() = ClipBpeTokenizer::kEot;
  return out;
}

bool is_clip_merges_file(const std::string& path) {
  auto ends = [&](const std::string& s) { return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0; };
  if (!ends(".txt.gz") && !ends(".txt")) return false;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return false;
  char head[17] = {};
  const int n = gzread(f, head, 17);
  gzclose(f);
  return n == 17 && std::string_view(head, 17) == "\"bpe_simple_vocab";
}

}  // namespace vimo::text

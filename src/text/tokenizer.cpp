// Tokenizer loading by file kind, and the UTF-8 checks every backend shares.
#include "vimo/text/tokenizer.h"

#include <fstream>

#include "vimo/core/error.h"
#include "vimo/text/clip_bpe.h"
#include "vimo/text/hf_bpe.h"
#include "vimo/text/sentencepiece.h"

namespace vimo::text {
namespace {

// Length of the valid UTF-8 sequence at s[i], or -(bytes of its maximal invalid prefix) (Unicode
// "maximal subpart" rule, the one Python's errors="replace" and Rust's from_utf8_lossy follow).
int utf8_step(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  int need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) need = 1;
  else if (b == 0xE0) need = 2, lo = 0xA0;
  else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) need = 2;
  else if (b == 0xED) need = 2, hi = 0x9F;
  else if (b == 0xF0) need = 3, lo = 0x90;
  else if (b >= 0xF1 && b <= 0xF3) need = 3;
  else if (b == 0xF4) need = 3, hi = 0x8F;
  else return -1;
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    const auto c = static_cast<unsigned char>(s[i + k]);
    if (c < lo || c > hi) return -k;
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

}  // namespace

size_t first_invalid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i);
    if (n < 0) return i;
    i += static_cast<size_t>(n);
  }
  return std::string_view::npos;
}

void check_utf8(std::string_view s, const std::string& what) {
  const size_t bad = first_invalid_utf8(s);
  if (bad == std::string_view::npos) return;
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(s[bad]));
  throw Error(what + " is not valid UTF-8: byte " + std::to_string(bad) + " (" + hex +
              ") does not start a valid sequence; re-encode the input as UTF-8");
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const int n = utf8_step(s, i);
    if (n > 0) {
      out.append(s.data() + i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

std::unique_ptr<TextTokenizer> load_text_tokenizer(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  VIMO_CHECK(f, "cannot open text tokenizer '" + path +
                   "': pass a tokenizer.json, a SentencePiece .model or CLIP's bpe_simple_vocab_16e6.txt.gz");
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  if (gz || is_clip_merges_file(path)) return std::make_unique<ClipBpeTokenizer>(path);
  char c = 0;
  while (f.get(c) && std::isspace(static_cast<unsigned char>(c))) {
  }
  if (c == '{') return std::make_unique<HfBpeTokenizer>(path);
  return std::make_unique<SentencePieceTokenizer>(path);
}

}  // namespace vimo::text

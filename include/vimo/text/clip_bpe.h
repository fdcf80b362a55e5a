// CLIP's BPE text tokenizer (OpenAI CLIP / open_clip SimpleTokenizer), matching open_clip's
// tokenizer.encode() and tokenize() id for id, from CLIP's merges file bpe_simple_vocab_16e6.txt(.gz).
//
// Text cleaning follows open_clip's "lower" cleaning: ftfy.fix_text, html.unescape twice, strip,
// whitespace runs to one space, str.lower(). Of ftfy.fix_text (6.3, default settings) vimo does:
//   - the per-line processing, repeated until the line no longer changes, and unescape_html="auto"
//     (off from the first line holding '<' on);
//   - unescape_html, fix_c1_controls (C1 controls as Windows-1252), fix_latin_ligatures,
//     fix_character_width (full-width / half-width forms, U+3000), uncurl_quotes, fix_line_breaks,
//     remove_terminal_escapes, remove_control_chars, and NFC normalization.
// Not reproduced:
//   - fix_encoding: mojibake detection and repair ("cafÃ©" stays as it is; ftfy gives "café"), with
//     its restore_byte_a0, replace_lossy_sequences and decode_inconsistent_utf8 steps;
//   - fix_surrogates (UTF-8 input cannot hold surrogates);
//   - HTML entity names outside HTML 4.01's 252 (plus &apos; and html5's upper-case aliases such as
//     &AMP;): html5-only names such as &check; or &NotEqual; stay as written, in ftfy's step and in
//     html.unescape alike (numeric references &#...; are all handled);
//   - NFC of CJK compatibility ideographs (U+F900..U+FAFF, U+2F800..U+2FA1F stay as they are).
// Unicode data is Python 3.11's (Unicode 14.0); str.lower() is exact for it, with Final_Sigma judged
// from an approximation of Case_Ignorable (categories Mn Me Cf Lm Sk and the mid-word punctuation).
// The split pattern and its \p{L} \p{N} classes are PCRE2's (UTF, UCP, caseless).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vimo/text/tokenizer.h"

namespace vimo::text {

class ClipSplitRegex;  // the compiled PCRE2 split pattern (clip_bpe.cpp)

class ClipBpeTokenizer : public TextTokenizer {
 public:
  static constexpr int kSot = 49406;  // <start_of_text>
  static constexpr int kEot = 49407;  // <end_of_text>

  // `path`: bpe_simple_vocab_16e6.txt.gz, or the same file uncompressed.
  explicit ClipBpeTokenizer(const std::string& path);
  ~ClipBpeTokenizer() override;
  // Ids of the cleaned `text`; `add_special` puts <start_of_text> before and <end_of_text> after.
  std::vector<int> encode(std::string_view text, bool add_special = false) const override;
  // open_clip's decode: token texts joined, "</w>" read as a space; `skip_special` drops sot/eot.
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  std::string id_to_token(int id) const override;
  std::optional<int> token_to_id(std::string_view token) const override;
  bool is_special(int id) const override { return id == kSot || id == kEot; }
  std::optional<int> bos_id() const override { return kSot; }
  std::optional<int> eos_id() const override { return kEot; }
  std::string kind() const override { return "clip_bpe"; }
  const std::string& path() const override { return path_; }

  // open_clip's text cleaning ("lower"), as UTF-8.
  static std::string clean(std::string_view text);

 private:
  void bpe(const std::string& word, std::vector<int>& out) const;

  std::string path_;
  std::vector<std::string> id_to_token_;  // token text in the byte-encoder alphabet ("hello</w>")
  std::vector<std::string> id_to_bytes_;  // the bytes a token stands for ("</w>" kept as written)
  std::unordered_map<std::string, int> token_to_id_;
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, merged id)
  int byte_id_[256] = {};
  std::unique_ptr<ClipSplitRegex> split_;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

// open_clip.tokenize(text, context): [sot] + ids + [eot], cut to `context` ids with eot kept last,
// padded with 0 to `context`.
std::vector<int64_t> clip_tokenize(const ClipBpeTokenizer& tok, std::string_view text, int context = 77);

// True when `path` looks like a CLIP merges file: a name ending in .txt.gz / .txt whose first line
// starts with "bpe_simple_vocab (the header of CLIP's file).
bool is_clip_merges_file(const std::string& path);

}  // namespace vimo::text

// The text tokenizer interface shared by the SentencePiece and HF tokenizer.json backends.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vimo::text {

// A text tokenizer. Input text must be valid UTF-8: encode() throws vimo::Error naming the byte
// offset of the first invalid sequence. decode() never throws on ids in range; byte sequences that
// do not form UTF-8 (e.g. half of a multi-byte character) come out as U+FFFD.
class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // Ids of `text`; `add_special` adds what the model's post-processor adds (e.g. BOS).
  virtual std::vector<int> encode(std::string_view text, bool add_special = false) const = 0;
  // Text of `ids`; `skip_special` drops special/control tokens instead of writing their text.
  virtual std::string decode(const std::vector<int>& ids, bool skip_special = false) const = 0;
  // Number of ids (one past the largest id, added tokens included).
  virtual int vocab_size() const = 0;
  // The token text of an id, and the id of a token text (nullopt when absent).
  virtual std::string id_to_token(int id) const = 0;
  virtual std::optional<int> token_to_id(std::string_view token) const = 0;
  // True for special/control tokens (never produced from ordinary text except by exact match).
  virtual bool is_special(int id) const = 0;
  virtual std::optional<int> bos_id() const = 0;
  virtual std::optional<int> eos_id() const = 0;
  // "hf_bpe", "sentencepiece" or "clip_bpe".
  virtual std::string kind() const = 0;
  // The file it was loaded from.
  virtual const std::string& path() const = 0;
};

// Loads `path` by its kind: a tokenizer.json (HF), a SentencePiece .model, or CLIP's merges file
// (bpe_simple_vocab_16e6.txt[.gz]).
std::unique_ptr<TextTokenizer> load_text_tokenizer(const std::string& path);

// Index of the first byte of `s` that does not start a valid UTF-8 sequence, or npos if valid.
size_t first_invalid_utf8(std::string_view s);
// Throws vimo::Error naming `what` and the byte offset when `s` is not valid UTF-8.
void check_utf8(std::string_view s, const std::string& what);
// `bytes` with each invalid UTF-8 sequence replaced by U+FFFD (as Rust's from_utf8_lossy does).
std::string utf8_lossy(std::string_view bytes);

}  // namespace vimo::text

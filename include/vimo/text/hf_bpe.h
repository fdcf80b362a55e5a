// HF tokenizer.json backend: byte-level BPE as Llama 3 and GPT-2 use it (split regex, merges,
// added/special tokens, ByteLevel decoder), matching the `tokenizers` library id for id.
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "vimo/text/tokenizer.h"

namespace vimo::text {

class SplitRegex;  // a compiled PCRE2 pre-tokenizer pattern (hf_bpe.cpp)

// Supported tokenizer.json: model.type BPE (no dropout, byte_fallback, subword prefix/suffix);
// normalizer null; pre_tokenizer ByteLevel, Split (regex, behavior Isolated) or a Sequence of them;
// decoder ByteLevel; post_processor null, ByteLevel, TemplateProcessing or a Sequence of them.
// Anything else is refused with an error that names the field.
class HfBpeTokenizer : public TextTokenizer {
 public:
  explicit HfBpeTokenizer(const std::string& path);
  ~HfBpeTokenizer() override;
  std::vector<int> encode(std::string_view text, bool add_special = false) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override { return static_cast<int>(id_to_bytes_.size()); }
  std::string id_to_token(int id) const override;
  std::optional<int> token_to_id(std::string_view token) const override;
  bool is_special(int id) const override;
  std::optional<int> bos_id() const override { return bos_; }
  std::optional<int> eos_id() const override { return eos_; }
  std::string kind() const override { return "hf_bpe"; }
  const std::string& path() const override { return path_; }

 private:
  struct Added {
    std::string content;
    int id = 0;
    bool special = false, lstrip = false, rstrip = false, single_word = false;
  };
  struct PreStep {  // one pre-tokenizer step: a regex split, or ByteLevel's prefix space/regex
    std::shared_ptr<SplitRegex> regex;
    bool prefix_space = false;
  };
  void load(const std::string& json_text);
  void encode_segment(std::string_view text, std::vector<int>& out) const;
  void encode_word(std::string_view word, std::vector<int>& out) const;
  void bpe(std::string_view word, std::vector<int>& out) const;

  std::string path_;
  std::vector<std::string> id_to_bytes_;             // raw bytes of each token (added: their content)
  std::vector<std::string> id_to_token_;             // token text as written in tokenizer.json
  std::unordered_map<std::string, int> bytes_to_id_;  // model vocabulary, keyed by raw bytes
  std::unordered_map<std::string, int> token_to_id_;  // by token text (model + added)
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left,right) -> (rank, merged id)
  std::vector<Added> added_;
  std::array<bool, 256> added_first_{};  // bytes that start some added token
  std::array<int, 256> byte_id_{};       // id of each single-byte token, -1 if none
  std::vector<bool> special_;
  std::vector<PreStep> pre_steps_;
  std::vector<int> prefix_ids_, suffix_ids_;  // TemplateProcessing "single" around the sequence
  std::optional<int> bos_, eos_, unk_;
  bool ignore_merges_ = false;
  // Word cache: pre-token bytes -> ids; bounded, guarded for concurrent encode() calls.
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace vimo::text

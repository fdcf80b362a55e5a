// The unified vocabulary: text tokens, then vimo's special tokens, then Q×K motion tokens
// (id = motion_base + q·K + k), saved as vocab.json in a run directory.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vimo/text/tokenizer.h"

namespace vimo::text {

// The motion tokenizer's code layout: Q residual quantizers of K codes each.
struct MotionLayout {
  int codebook_size = 512;  // K
  int num_quantizers = 6;   // Q
};
// Reads K and Q from a JSON file written by a tokenizer run: keys codebook_size and num_quantizers,
// at top level or under "model"; a directory is searched for architecture.json / config.json.
MotionLayout read_motion_layout(const std::string& path);

// vimo's own special tokens, in the order they are appended after the text tokens.
const std::vector<std::string>& vimo_special_names();
// Llama-3 chat tokens, recorded in the vocabulary when the text tokenizer has all of them.
const std::vector<std::string>& llama3_chat_names();

enum class TokenKind { kText, kSpecial, kMotion };
struct TokenInfo {
  TokenKind kind = TokenKind::kText;
  int q = -1, k = -1;  // motion tokens only
};

class UnifiedVocab {
 public:
  // Lays out the vocabulary over `text`. vimo specials that the text tokenizer already has are
  // reused; the rest take its reserved tokens (<|reserved_special_token_N|>, in N order) while
  // they last, then new ids after the text ids (from `first_new_id` when that is larger: a model
  // whose embedding has more rows than its tokenizer has ids keeps those rows unused).
  static UnifiedVocab build(const TextTokenizer& text, const MotionLayout& layout, int first_new_id = 0);
  static UnifiedVocab load(const std::string& vocab_json);
  void save(const std::string& vocab_json) const;  // atomic

  int size() const { return motion_base_ + layout_.codebook_size * layout_.num_quantizers; }
  int text_size() const { return text_size_; }
  int motion_base() const { return motion_base_; }
  const MotionLayout& layout() const { return layout_; }
  // "llama3" when the text tokenizer has Llama-3's header tokens, else "vimo".
  const std::string& chat_format() const { return chat_format_; }
  const std::string& text_tokenizer() const { return text_tokenizer_; }
  const std::string& text_kind() const { return text_kind_; }

  // Id of a special token by name; throws naming the unknown name and listing the known ones.
  int special(const std::string& name) const;
  std::optional<int> find_special(const std::string& name) const;
  const std::map<std::string, int>& specials() const { return specials_; }
  int motion_id(int q, int k) const;
  TokenInfo info(int id) const;
  // A readable name: the special's name, "<m q=Q k=K>" for motion, "" for text ids.
  std::string name(int id) const;
  // Checks that `text` is the tokenizer this vocabulary was built over (kind and size).
  void check_text_tokenizer(const TextTokenizer& text) const;

 private:
  MotionLayout layout_;
  int text_size_ = 0, motion_base_ = 0;
  std::string chat_format_ = "vimo", text_tokenizer_, text_kind_;
  std::map<std::string, int> specials_;
  std::map<std::string, std::string> reused_;  // vimo name -> the text token it reuses
  std::map<int, std::string> special_names_;
};

}  // namespace vimo::text

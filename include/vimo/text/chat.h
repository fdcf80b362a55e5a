// The chat template: conversations of system/user/assistant turns holding text and motion blocks,
// rendered to unified-vocabulary ids with a loss mask, and parsed back from generated ids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vimo/text/tokenizer.h"
#include "vimo/text/vocab.h"

namespace vimo::text {

enum class Role { kSystem, kUser, kAssistant };
std::string role_name(Role r);
Role parse_role(const std::string& name);  // "system" | "user" | "assistant"

struct Segment {
  enum class Kind { kText, kMotion, kMotionA, kMotionB };
  Kind kind = Kind::kText;
  std::string text;        // kText
  std::vector<int> codes;  // motion: [T, P, Q] row-major, P = 2 for kMotion (A then B), else 1
  bool operator==(const Segment& o) const { return kind == o.kind && text == o.text && codes == o.codes; }
};
struct Turn {
  Role role = Role::kUser;
  std::vector<Segment> segments;
  bool operator==(const Turn& o) const { return role == o.role && segments == o.segments; }
};
using Conversation = std::vector<Turn>;

struct Rendered {
  std::vector<int> ids;
  std::vector<uint8_t> loss_mask;  // 1 on assistant tokens: after the role header, through end-of-turn
};

class ChatTemplate {
 public:
  // `text` must be the tokenizer `vocab` was built over (checked).
  ChatTemplate(const UnifiedVocab& vocab, const TextTokenizer& text);
  // vimo format:   [bos] <|role|> content <|end|> ...
  // llama3 format: <|begin_of_text|> <|start_header_id|>role<|end_header_id|>"\n\n"content<|eot_id|> ...
  // `generation_prompt` appends an open assistant header.
  Rendered render(const Conversation& c, bool generation_prompt = false) const;
  // Ids of one motion block, delimiters included: two-person <motion> A(t0,q0..) B(t0,q0..) ... </motion>.
  std::vector<int> render_motion(const Segment& s) const;
  // Inverse of render. Tolerates what generation leaves: a last turn without its end token and a
  // last motion block cut short (whole frames are kept). Throws on an illegal id for a slot.
  Conversation parse(const std::vector<int>& ids) const;
  const UnifiedVocab& vocab() const { return vocab_; }

 private:
  const UnifiedVocab& vocab_;
  const TextTokenizer& text_;
  bool llama3_ = false;
};

// JSON form: [{"role": "user", "content": "text" | [{"type": "text", "text": ...},
//   {"type": "motion", "codes": [[[q0..],[q0..]], ...]} ([T][2][Q]),
//   {"type": "motion_a"|"motion_b", "codes": [[q0..], ...]} ([T][Q])]}]
Conversation conversation_from_json(const std::string& json_text, int num_quantizers);
std::string conversation_to_json(const Conversation& c, int num_quantizers);

}  // namespace vimo::text

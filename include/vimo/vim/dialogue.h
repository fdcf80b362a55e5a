// Stage-3 samples: a conversation record (data/conversations.h) with its motions looked up in token
// caches becomes a chat-template conversation, rendered with the loss on assistant turns and fitted
// to the context length by dropping the oldest exchanges.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>

#include "vimo/data/conversations.h"
#include "vimo/data/packing.h"
#include "vimo/data/token_cache.h"
#include "vimo/text/chat.h"

namespace vimo::vim {

// Sequence tags: a stage-2 sample keeps its Task's index; a conversation of task k of
// data::conversation_tasks() gets kConversationTag + k.
constexpr int64_t kConversationTag = 100;
int64_t conversation_tag(const std::string& task);
// "t2m", "m2t", ... for stage-2 tags; "editing", "reasoning", "story", "conv_t2m", "conv_m2t",
// "conv_reaction" for conversations (the suffix of loss_<name> in validation metrics).
std::string tag_name(int64_t tag);

// Finds a clip by id (nullopt: unknown).
using ClipLookup = std::function<std::optional<data::TokenClip>(const std::string& id)>;

// Each turn: its text (when not blank), then its motion block: <motion> for a clip with two persons,
// <motion_a> for a one-person clip; the first `layers` quantizer levels. An unknown clip id is a
// vimo::Error naming the conversation, the turn and the id.
text::Conversation build_dialogue(const data::ConversationRecord& r, const ClipLookup& clips, int64_t layers);

struct FittedDialogue {
  data::TokenSeq seq;        // ids, targets on assistant tokens only, tag
  int64_t dropped_turns = 0;  // oldest turns left out to fit max_length (always whole user+assistant pairs)
};
// Renders `c`; while it is longer than `max_length` ids, the oldest user/assistant exchange is
// dropped (a leading system turn stays). nullopt when even the last exchange alone is too long.
// `depth`: rendered (and measured) in the depth-head layout.
std::optional<FittedDialogue> fit_dialogue(const text::ChatTemplate& chat, text::Conversation c, int64_t max_length,
                                           int64_t tag, bool depth = false);

// A generation prompt (`c` ending with a user turn): while its rendering with the open assistant
// header is longer than `budget` ids, the oldest user/assistant exchange is dropped (a leading system
// turn stays). Returns the turns dropped; a vimo::Error when the last user turn alone is too long.
int64_t fit_prompt(const text::ChatTemplate& chat, text::Conversation& c, int64_t budget);

}  // namespace vimo::vim

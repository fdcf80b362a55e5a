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
std::optional<FittedDialogue> fit_dialogue(const text::ChatTemplate& chat, text::Conversation c, int64_t max_length,
                                           int64_t tag);

}  // namespace vimo::vim

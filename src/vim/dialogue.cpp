// Stage-3 samples from conversation records (dialogue.h).
#include "vimo/vim/dialogue.h"

#include "vimo/core/error.h"
#include "vimo/vim/batches.h"
#include "vimo/vim/tasks.h"

namespace vimo::vim {

text::Conversation build_dialogue(const data::ConversationRecord& r, const ClipLookup& clips, int64_t layers) {
  text::Conversation c;
  for (size_t i = 0; i < r.turns.size(); ++i) {
    const auto& t = r.turns[i];
    text::Turn turn;
    turn.role = text::parse_role(t.role);
    if (t.text.find_first_not_of(" \t\r\n") != std::string::npos)
      turn.segments.push_back({text::Segment::Kind::kText, t.text, {}});
    if (!t.motion.empty()) {
      const auto clip = clips(t.motion);
      VIMO_CHECK(clip.has_value(), "conversation '" + r.id + "', turn " + std::to_string(i + 1) + ": motion '" + t.motion +
                                       "' is not a clip of the token cache (pack and encode it first)");
      const auto kind = clip->persons == 2 ? text::Segment::Kind::kMotion : text::Segment::Kind::kMotionA;
      turn.segments.push_back(motion_segment(clip->codes, kind, layers));
    }
    c.push_back(std::move(turn));
  }
  return c;
}

std::optional<FittedDialogue> fit_dialogue(const text::ChatTemplate& chat, text::Conversation c, int64_t max_length,
                                           int64_t tag) {
  FittedDialogue out;
  const size_t first = !c.empty() && c.front().role == text::Role::kSystem ? 1 : 0;
  while (true) {
    out.seq = render_sequence(chat, c, tag);
    if (static_cast<int64_t>(out.seq.ids.size()) <= max_length) return out;
    // The oldest exchange: the first user turn after the system turn and the assistant turn after it.
    if (c.size() < first + 4) return std::nullopt;
    c.erase(c.begin() + static_cast<std::ptrdiff_t>(first), c.begin() + static_cast<std::ptrdiff_t>(first + 2));
    out.dropped_turns += 2;
  }
}

}  // namespace vimo::vim

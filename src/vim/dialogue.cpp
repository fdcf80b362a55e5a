// Stage-3 samples from conversation records (dialogue.h).
#include "vimo/vim/dialogue.h"

#include <algorithm>

#include "vimo/core/error.h"
#include "vimo/vim/batches.h"
#include "vimo/vim/tasks.h"

namespace vimo::vim {

int64_t conversation_tag(const std::string& task) {
  const auto& all = data::conversation_tasks();
  const auto it = std::find(all.begin(), all.end(), task);
  VIMO_CHECK(it != all.end(), "unknown conversation task '" + task + "'");
  return kConversationTag + (it - all.begin());
}

std::string tag_name(int64_t tag) {
  const auto& all = data::conversation_tasks();
  if (tag >= kConversationTag && tag < kConversationTag + static_cast<int64_t>(all.size())) {
    const std::string& t = all[static_cast<size_t>(tag - kConversationTag)];
    return t == "editing" || t == "reasoning" || t == "story" ? t : "conv_" + t;
  }
  VIMO_CHECK(tag >= 0 && tag < kNumTasks, "unknown sequence tag " + std::to_string(tag));
  return task_name(static_cast<Task>(tag));
}

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
                                           int64_t tag, bool depth) {
  FittedDialogue out;
  const size_t first = !c.empty() && c.front().role == text::Role::kSystem ? 1 : 0;
  while (true) {
    out.seq = render_sequence(chat, c, tag, depth);
    if (static_cast<int64_t>(out.seq.ids.size()) <= max_length) return out;
    // The oldest exchange: the first user turn after the system turn and the assistant turn after it.
    if (c.size() < first + 4) return std::nullopt;
    c.erase(c.begin() + static_cast<std::ptrdiff_t>(first), c.begin() + static_cast<std::ptrdiff_t>(first + 2));
    out.dropped_turns += 2;
  }
}

int64_t fit_prompt(const text::ChatTemplate& chat, text::Conversation& c, int64_t budget) {
  const size_t first = !c.empty() && c.front().role == text::Role::kSystem ? 1 : 0;
  int64_t dropped = 0;
  while (static_cast<int64_t>(chat.render(c, true).ids.size()) > budget && c.size() > first + 1) {
    c.erase(c.begin() + static_cast<int64_t>(first), c.begin() + static_cast<int64_t>(first) + 2);
    dropped += 2;
  }
  const auto n = static_cast<int64_t>(chat.render(c, true).ids.size());
  VIMO_CHECK(n <= budget, "the last user turn alone is " + std::to_string(n) + " tokens, more than the " + std::to_string(budget) +
                              " the context leaves beside the answer; shorten its motion or lower the answer length");
  return dropped;
}

}  // namespace vimo::vim

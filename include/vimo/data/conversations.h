// Multi-turn conversations of stage 3 (docs/conversations.md): JSONL, one conversation per line,
// motions referenced by clip id of a packed, token-cached dataset; a reader that checks every line
// (file and line in every error), an atomic writer, and the converter from instruction triples.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vimo::data {

// "editing" | "reasoning" | "story" | "t2m" | "m2t" | "reaction".
const std::vector<std::string>& conversation_tasks();

struct ConversationTurn {
  std::string role;    // "user" | "assistant"
  std::string text;    // may be empty when the turn holds a motion
  std::string motion;  // clip id; empty: no motion ("motion": null)
  bool operator==(const ConversationTurn& o) const { return role == o.role && text == o.text && motion == o.motion; }
};

struct ConversationRecord {
  std::string id;
  std::string task;
  std::vector<ConversationTurn> turns;  // user first, alternating, assistant last
  bool operator==(const ConversationRecord& o) const { return id == o.id && task == o.task && turns == o.turns; }
};

// One JSON line -> a checked record; errors start with `where` (e.g. "conv.jsonl:12"): not JSON, a
// missing or mistyped key, an unknown key (a misspelt "motoin" is not ignored), an unknown task,
// no turns, a turn order that is not user/assistant alternating from a user turn to an assistant
// turn, a turn with neither text nor motion.
ConversationRecord parse_conversation(const std::string& line, const std::string& where);

// Every non-blank line of `path`; also refuses a repeated conversation id and, when `clip_known` is
// given, a motion id it does not know (naming the line, the turn and the id).
std::vector<ConversationRecord> read_conversations(const std::string& path,
                                                   const std::function<bool(const std::string&)>& clip_known = {});

// The compact one-line JSON of a record (keys in the documented order; "motion": null when empty).
std::string conversation_line(const ConversationRecord& r);
// All records, one line each, written to a temporary name and renamed (nothing half-written).
void write_conversations(const std::string& path, const std::vector<ConversationRecord>& records);

// Instruction triples (the form of VIM's published editing samples) -> editing conversations.
// Input: JSONL objects {"instruction", "source", "target"} with optional "source_motion" and
// "target_motion" clip ids and "id"; or tab-separated lines `instruction<TAB>source<TAB>target
// [<TAB>source_motion<TAB>target_motion]` (a first line "instruction<TAB>source<TAB>target..." is a
// header and skipped). With clip ids the conversation is: user asks for the source scene, assistant
// answers with its motion, user gives the instruction, assistant answers with the edited motion and
// caption. Without them, the editing is done in text: user describes the source scene and the
// instruction, assistant answers with the edited description. Ids default to "<prefix><line>".
std::vector<ConversationRecord> conversations_from_triples(const std::string& path, const std::string& id_prefix = "triple_");

}  // namespace vimo::data

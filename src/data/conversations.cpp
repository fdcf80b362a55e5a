// Stage-3 conversations: JSONL reading with per-line checks, writing, and instruction triples
// (conversations.h).
#include "vimo/data/conversations.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace vimo::data {
namespace {

using json = nlohmann::ordered_json;

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

std::string trimmed(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

const std::string& string_key(const json& o, const char* key, const std::string& where) {
  VIMO_CHECK(o.contains(key), where + ": missing key \"" + key + "\"");
  VIMO_CHECK(o[key].is_string(), where + ": \"" + key + "\" must be a string, not " + o[key].dump());
  return o[key].get_ref<const std::string&>();
}

void only_keys(const json& o, const std::set<std::string>& allowed, const std::string& where) {
  for (const auto& [k, v] : o.items())
    VIMO_CHECK(allowed.count(k), where + ": unknown key \"" + k + "\" (known: " +
                                     joined(std::vector<std::string>(allowed.begin(), allowed.end())) + ")");
}

// One line as JSON; a parse error names `where`.
json parse_line(const std::string& line, const std::string& where) {
  try {
    return json::parse(line);
  } catch (const json::exception& e) {
    throw Error(where + ": not a JSON object (" + std::string(e.what()) + ")");
  }
}

// Calls fn(line number, "path:line", line) for every non-blank line of `path` (`what`: the kind of
// file, for the error when it cannot be read).
void for_each_line(const std::string& path, const std::string& what,
                   const std::function<void(int64_t, const std::string&, const std::string&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  VIMO_CHECK(in.good(), what + " '" + path + "' cannot be read (does it exist?)");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n)
    if (!blank(line)) fn(n, path + ":" + std::to_string(n), line);
}

// Splits a line at tabs.
std::vector<std::string> tab_fields(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  for (char c : line) {
    if (c == '\t') {
      f.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  f.push_back(cur);
  return f;
}

}  // namespace

const std::vector<std::string>& conversation_tasks() {
  static const std::vector<std::string> t = {"editing", "reasoning", "story", "t2m", "m2t", "reaction"};
  return t;
}

ConversationRecord parse_conversation(const std::string& line, const std::string& where) {
  const json j = parse_line(line, where);
  VIMO_CHECK(j.is_object(), where + ": a conversation is a JSON object {\"id\", \"task\", \"turns\"}, not " +
                                j.dump().substr(0, 60));
  only_keys(j, {"id", "task", "turns"}, where);
  ConversationRecord r;
  r.id = string_key(j, "id", where);
  VIMO_CHECK(!blank(r.id), where + ": \"id\" is empty");
  r.task = string_key(j, "task", where);
  const auto& tasks = conversation_tasks();
  VIMO_CHECK(std::find(tasks.begin(), tasks.end(), r.task) != tasks.end(),
             where + ": unknown task \"" + r.task + "\" (known: " + joined(tasks) + ")");
  VIMO_CHECK(j.contains("turns") && j["turns"].is_array(), where + ": \"turns\" must be a list of turns");
  VIMO_CHECK(!j["turns"].empty(), where + ": conversation '" + r.id + "' has no turns");
  for (size_t i = 0; i < j["turns"].size(); ++i) {
    const auto& t = j["turns"][i];
    const std::string tw = where + ": turn " + std::to_string(i + 1) + " of '" + r.id + "'";
    VIMO_CHECK(t.is_object(), tw + ": a turn is an object {\"role\", \"text\", \"motion\"}");
    only_keys(t, {"role", "text", "motion"}, tw);
    ConversationTurn turn;
    turn.role = string_key(t, "role", tw);
    VIMO_CHECK(turn.role == "user" || turn.role == "assistant",
               tw + ": role \"" + turn.role + "\" is neither \"user\" nor \"assistant\"");
    const bool user_turn = i % 2 == 0;
    VIMO_CHECK(turn.role == (user_turn ? "user" : "assistant"),
               tw + ": expected " + (user_turn ? "a user" : "an assistant") +
                   " turn (turns alternate user, assistant, ... from a user turn), found " + turn.role);
    if (t.contains("text")) {
      VIMO_CHECK(t["text"].is_string(), tw + ": \"text\" must be a string, not " + t["text"].dump());
      turn.text = t["text"].get<std::string>();
    }
    if (t.contains("motion") && !t["motion"].is_null()) {
      VIMO_CHECK(t["motion"].is_string() && !t["motion"].get_ref<const std::string&>().empty(),
                 tw + ": \"motion\" must be a clip id (a non-empty string) or null, not " + t["motion"].dump());
      turn.motion = t["motion"].get<std::string>();
    }
    VIMO_CHECK(!blank(turn.text) || !turn.motion.empty(), tw + ": the turn has neither text nor a motion");
    r.turns.push_back(std::move(turn));
  }
  VIMO_CHECK(r.turns.back().role == "assistant",
             where + ": conversation '" + r.id + "' ends with a user turn (nothing to answer; end with an assistant turn)");
  return r;
}

std::vector<ConversationRecord> read_conversations(const std::string& path,
                                                   const std::function<bool(const std::string&)>& clip_known) {
  std::vector<ConversationRecord> out;
  std::set<std::string> ids;
  for_each_line(path, "conversation file", [&](int64_t, const std::string& where, const std::string& line) {
    auto r = parse_conversation(line, where);
    VIMO_CHECK(ids.insert(r.id).second, where + ": conversation id '" + r.id + "' appears twice");
    if (clip_known)
      for (size_t i = 0; i < r.turns.size(); ++i)
        VIMO_CHECK(r.turns[i].motion.empty() || clip_known(r.turns[i].motion),
                   where + ": turn " + std::to_string(i + 1) + " of '" + r.id + "' names motion '" + r.turns[i].motion +
                       "', which is not a clip of the dataset (pack and token-cache it first)");
    out.push_back(std::move(r));
  });
  VIMO_CHECK(!out.empty(), "conversation file '" + path + "' holds no conversation");
  return out;
}

std::string conversation_line(const ConversationRecord& r) {
  json j;
  j["id"] = r.id;
  j["task"] = r.task;
  j["turns"] = json::array();
  for (const auto& t : r.turns) {
    json tj;
    tj["role"] = t.role;
    tj["text"] = t.text;
    tj["motion"] = t.motion.empty() ? json(nullptr) : json(t.motion);
    j["turns"].push_back(std::move(tj));
  }
  return j.dump();
}

void write_conversations(const std::string& path, const std::vector<ConversationRecord>& records) {
  std::string text;
  for (const auto& r : records) text += conversation_line(r) + "\n";
  core::write_file_atomic(path, text);
}

std::vector<ConversationRecord> conversations_from_triples(const std::string& path, const std::string& id_prefix) {
  std::vector<ConversationRecord> out;
  std::set<std::string> ids;
  for_each_line(path, "triple file", [&](int64_t n, const std::string& where, const std::string& line) {
    std::string id = id_prefix + std::to_string(n), instruction, source, target, source_motion, target_motion;
    const std::string lead = trimmed(line);
    if (lead.front() == '{') {
      const json j = parse_line(line, where);
      only_keys(j, {"id", "instruction", "source", "target", "source_motion", "target_motion"}, where);
      instruction = string_key(j, "instruction", where);
      source = string_key(j, "source", where);
      target = string_key(j, "target", where);
      if (j.contains("id")) id = string_key(j, "id", where);
      if (j.contains("source_motion")) source_motion = string_key(j, "source_motion", where);
      if (j.contains("target_motion")) target_motion = string_key(j, "target_motion", where);
    } else {
      auto f = tab_fields(line);
      if (out.empty() && !f.empty() && trimmed(f[0]) == "instruction") return;  // a header line
      VIMO_CHECK(f.size() == 3 || f.size() == 5,
                 where + ": expected 3 tab-separated fields (instruction, source caption, target caption) or 5 (and "
                         "the source and target clip ids), found " + std::to_string(f.size()));
      instruction = trimmed(f[0]), source = trimmed(f[1]), target = trimmed(f[2]);
      if (f.size() == 5) source_motion = trimmed(f[3]), target_motion = trimmed(f[4]);
    }
    VIMO_CHECK(!blank(instruction) && !blank(source) && !blank(target),
               where + ": the instruction, the source caption and the target caption must all be non-empty");
    VIMO_CHECK(source_motion.empty() == target_motion.empty(),
               where + ": give both clip ids (source_motion and target_motion) or neither");
    VIMO_CHECK(ids.insert(id).second, where + ": conversation id '" + id + "' appears twice");
    ConversationRecord r;
    r.id = id;
    r.task = "editing";
    if (!source_motion.empty()) {
      r.turns = {{"user", source, ""},
                 {"assistant", "", source_motion},
                 {"user", instruction, ""},
                 {"assistant", target, target_motion}};
    } else {
      r.turns = {{"user", source + "\n" + instruction, ""}, {"assistant", target, ""}};
    }
    out.push_back(std::move(r));
  });
  VIMO_CHECK(!out.empty(), "triple file '" + path + "' holds no triple");
  return out;
}

}  // namespace vimo::data

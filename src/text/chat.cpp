// Chat template: rendering conversations to ids + loss mask, parsing ids back, and the JSON form.
#include "vimo/text/chat.h"

#include "vimo/core/error.h"

namespace vimo::text {

using json = nlohmann::json;

namespace {

const char* kOpen[] = {"", "<motion>", "<motion_a>", "<motion_b>"};
const char* kClose[] = {"", "</motion>", "</motion_a>", "</motion_b>"};
int persons(Segment::Kind k) { return k == Segment::Kind::kMotion ? 2 : 1; }

// A run of the rendered sequence: text still to encode, or ids already known.
struct Piece {
  bool is_text;
  std::string text;
  std::vector<int> ids;
  uint8_t mask;
};

}  // namespace

std::string role_name(Role r) { return r == Role::kSystem ? "system" : r == Role::kUser ? "user" : "assistant"; }

Role parse_role(const std::string& n) {
  if (n == "system") return Role::kSystem;
  if (n == "user") return Role::kUser;
  if (n == "assistant") return Role::kAssistant;
  throw Error("unknown chat role '" + n + "' (expected system, user or assistant)");
}

ChatTemplate::ChatTemplate(const UnifiedVocab& vocab, const TextTokenizer& text)
    : vocab_(vocab), text_(text), llama3_(vocab.chat_format() == "llama3") {
  vocab.check_text_tokenizer(text);
}

std::vector<int> ChatTemplate::render_motion(const Segment& s) const {
  const int kind = static_cast<int>(s.kind), P = persons(s.kind), Q = vocab_.layout().num_quantizers;
  VIMO_CHECK(kind > 0, "render_motion: segment is text, not motion");
  VIMO_CHECK(s.codes.size() % static_cast<size_t>(P * Q) == 0,
             std::string(kOpen[kind]) + " block has " + std::to_string(s.codes.size()) +
                 " codes, not a whole number of frames of " + std::to_string(P) + "x" + std::to_string(Q));
  std::vector<int> ids{vocab_.special(kOpen[kind])};
  for (size_t i = 0; i < s.codes.size(); ++i) ids.push_back(vocab_.motion_id(static_cast<int>(i % Q), s.codes[i]));
  ids.push_back(vocab_.special(kClose[kind]));
  return ids;
}

Rendered ChatTemplate::render(const Conversation& c, bool generation_prompt) const {
  std::vector<Piece> p;
  auto ids = [&](std::vector<int> v, uint8_t m) { p.push_back({false, "", std::move(v), m}); };
  auto txt = [&](const std::string& s, uint8_t m) {
    if (!s.empty()) p.push_back({true, s, {}, m});
  };
  auto header = [&](Role r, uint8_t m) {
    if (llama3_) {
      ids({vocab_.special("<|start_header_id|>")}, 0);
      txt(role_name(r), 0);
      ids({vocab_.special("<|end_header_id|>")}, 0);
      txt("\n\n", m);
    } else {
      ids({vocab_.special("<|" + role_name(r) + "|>")}, 0);
    }
  };
  if (llama3_) ids({vocab_.special("<|begin_of_text|>")}, 0);
  else if (text_.bos_id()) ids({*text_.bos_id()}, 0);
  for (const auto& t : c) {
    const uint8_t m = t.role == Role::kAssistant ? 1 : 0;
    header(t.role, m);
    for (const auto& s : t.segments) {
      if (s.kind == Segment::Kind::kText) txt(s.text, m);
      else ids(render_motion(s), m);
    }
    ids({vocab_.special(llama3_ ? "<|eot_id|>" : "<|end|>")}, m);
  }
  if (generation_prompt) header(Role::kAssistant, 0);
  // Adjacent text runs are encoded together, as a template rendered to one string would be.
  Rendered r;
  for (size_t i = 0; i < p.size();) {
    if (!p[i].is_text) {
      r.ids.insert(r.ids.end(), p[i].ids.begin(), p[i].ids.end());
      r.loss_mask.insert(r.loss_mask.end(), p[i].ids.size(), p[i].mask);
      ++i;
      continue;
    }
    std::string s;
    const uint8_t m = p[i].mask;
    for (; i < p.size() && p[i].is_text && p[i].mask == m; ++i) s += p[i].text;
    const auto t = text_.encode(s);
    r.ids.insert(r.ids.end(), t.begin(), t.end());
    r.loss_mask.insert(r.loss_mask.end(), t.size(), m);
  }
  return r;
}

Conversation ChatTemplate::parse(const std::vector<int>& ids) const {
  const size_t n = ids.size();
  const int end_tok = vocab_.special(llama3_ ? "<|eot_id|>" : "<|end|>");
  const int Q = vocab_.layout().num_quantizers;
  auto where = [](size_t i) { return "at position " + std::to_string(i); };
  size_t i = 0;
  if (llama3_ && i < n && ids[i] == vocab_.special("<|begin_of_text|>")) ++i;
  if (!llama3_ && text_.bos_id() && i < n && ids[i] == *text_.bos_id()) ++i;
  Conversation conv;
  while (i < n) {
    Turn t;
    if (llama3_) {
      VIMO_CHECK(ids[i] == vocab_.special("<|start_header_id|>"), "expected <|start_header_id|> " + where(i));
      size_t e = i + 1;
      while (e < n && ids[e] != vocab_.special("<|end_header_id|>")) ++e;
      VIMO_CHECK(e < n, "role header opened " + where(i) + " is never closed by <|end_header_id|>");
      t.role = parse_role(text_.decode(std::vector<int>(ids.begin() + i + 1, ids.begin() + e)));
      i = e + 1;
    } else {
      const std::string name = vocab_.name(ids[i]);
      VIMO_CHECK(name == "<|system|>" || name == "<|user|>" || name == "<|assistant|>",
                 "expected a role token (<|system|>, <|user|>, <|assistant|>) " + where(i));
      t.role = parse_role(name.substr(2, name.size() - 4));
      ++i;
    }
    std::vector<int> buf;
    auto flush = [&] {
      if (buf.empty()) return;
      t.segments.push_back({Segment::Kind::kText, text_.decode(buf), {}});
      buf.clear();
    };
    for (; i < n && ids[i] != end_tok; ++i) {
      const TokenInfo info = vocab_.info(ids[i]);
      if (info.kind == TokenKind::kText) {
        buf.push_back(ids[i]);
        continue;
      }
      const std::string name = vocab_.name(ids[i]);
      int kind = 0;
      for (int k = 1; k < 4; ++k)
        if (name == kOpen[k]) kind = k;
      VIMO_CHECK(kind > 0, "unexpected token " + (name.empty() ? std::to_string(ids[i]) : name) + " " + where(i) +
                               " inside a " + role_name(t.role) + " turn");
      flush();
      Segment s;
      s.kind = static_cast<Segment::Kind>(kind);
      const size_t open = i;
      const int close = vocab_.special(kClose[kind]);
      for (++i; i < n && ids[i] != close; ++i) {
        const TokenInfo m = vocab_.info(ids[i]);
        const int slot = static_cast<int>(s.codes.size() % static_cast<size_t>(Q));
        VIMO_CHECK(m.kind == TokenKind::kMotion && m.q == slot,
                   "id " + std::to_string(ids[i]) + " " + where(i) + " is not a motion token of quantizer " +
                       std::to_string(slot) + " (the slot it fills in the " + kOpen[kind] + " block " + where(open) + ")");
        s.codes.push_back(m.k);
      }
      const size_t frame = static_cast<size_t>(persons(s.kind) * Q);
      if (i >= n) s.codes.resize(s.codes.size() / frame * frame);  // cut off by the length limit
      VIMO_CHECK(s.codes.size() % frame == 0, std::string(kOpen[kind]) + " block " + where(open) +
                                                  " ends mid-frame (" + std::to_string(s.codes.size()) + " codes)");
      t.segments.push_back(std::move(s));
      if (i >= n) break;
    }
    flush();
    if (llama3_ && !t.segments.empty() && t.segments[0].kind == Segment::Kind::kText &&
        t.segments[0].text.compare(0, 2, "\n\n") == 0) {
      t.segments[0].text.erase(0, 2);
      if (t.segments[0].text.empty()) t.segments.erase(t.segments.begin());
    }
    conv.push_back(std::move(t));
    if (i < n) ++i;  // the end-of-turn token
  }
  return conv;
}

Conversation conversation_from_json(const std::string& text, int Q) {
  Conversation c;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(std::string("conversation is not valid JSON: ") + e.what());
  }
  VIMO_CHECK(j.is_array(), "a conversation is a JSON array of turns {\"role\", \"content\"}");
  for (size_t ti = 0; ti < j.size(); ++ti) {
    const json& tj = j[ti];
    const std::string at = "conversation[" + std::to_string(ti) + "]";
    VIMO_CHECK(tj.is_object() && tj.contains("role") && tj.contains("content"), at + " needs \"role\" and \"content\"");
    Turn t;
    t.role = parse_role(tj["role"].get<std::string>());
    const json content = tj["content"].is_string() ? json::array({{{"type", "text"}, {"text", tj["content"]}}}) : tj["content"];
    for (size_t si = 0; si < content.size(); ++si) {
      const json& sj = content[si];
      const std::string type = sj.value("type", "text"), sat = at + ".content[" + std::to_string(si) + "]";
      Segment s;
      if (type == "text") {
        s.text = sj.at("text").get<std::string>();
        check_utf8(s.text, sat + ".text");
      } else {
        VIMO_CHECK(type == "motion" || type == "motion_a" || type == "motion_b",
                   sat + ".type '" + type + "' is unknown (text, motion, motion_a, motion_b)");
        s.kind = type == "motion" ? Segment::Kind::kMotion : type == "motion_a" ? Segment::Kind::kMotionA : Segment::Kind::kMotionB;
        for (const auto& frame : sj.at("codes")) {
          const json people = s.kind == Segment::Kind::kMotion ? frame : json::array({frame});
          VIMO_CHECK(people.size() == static_cast<size_t>(persons(s.kind)), sat + ".codes: each frame of a two-person motion holds [A codes, B codes]");
          for (const auto& person : people) {
            VIMO_CHECK(person.size() == static_cast<size_t>(Q), sat + ".codes: each person-frame needs " + std::to_string(Q) + " codes");
            for (const auto& k : person) s.codes.push_back(k.get<int>());
          }
        }
      }
      t.segments.push_back(std::move(s));
    }
    c.push_back(std::move(t));
  }
  return c;
}

std::string conversation_to_json(const Conversation& c, int Q) {
  json out = json::array();
  for (const auto& t : c) {
    json content = json::array();
    for (const auto& s : t.segments) {
      if (s.kind == Segment::Kind::kText) {
        content.push_back({{"type", "text"}, {"text", s.text}});
        continue;
      }
      const int P = persons(s.kind);
      json frames = json::array();
      for (size_t f = 0; f < s.codes.size(); f += static_cast<size_t>(P * Q)) {
        json people = json::array();
        for (int p = 0; p < P; ++p)
          people.push_back(std::vector<int>(s.codes.begin() + f + p * Q, s.codes.begin() + f + (p + 1) * Q));
        frames.push_back(P == 2 ? people : people[0]);
      }
      const char* type = s.kind == Segment::Kind::kMotion ? "motion" : s.kind == Segment::Kind::kMotionA ? "motion_a" : "motion_b";
      content.push_back({{"type", type}, {"codes", frames}});
    }
    out.push_back({{"role", role_name(t.role)}, {"content", content}});
  }
  return out.dump();
}

}  // namespace vimo::text

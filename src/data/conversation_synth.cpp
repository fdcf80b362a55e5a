// Synthetic Inter-MT2 (conversation_synth.h): scripted scene sequences and controlled edits of the
// synthetic interaction generator, written as InterHuman clips plus conversation JSONL.
#include "vimo/data/conversation_synth.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/parallel.h"
#include "vimo/core/rng.h"
#include "vimo/data/augment.h"
#include "vimo/data/conversations.h"
#include "vimo/motion/features.h"
#include "vimo/motion/interhuman.h"
#include "vimo/motion/synth.h"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace vimo::data {
namespace {

using motion::SynthType;

// How an answer names each type: a clause in the present and the past, and keyword phrases (each word
// matched as a word prefix, so "danc" finds dance, danced, dancing).
struct TypeWords {
  const char* present;
  const char* past;
  std::vector<const char*> keys;
};
const TypeWords kWords[motion::kNumSynthTypes] = {
    {"they shake hands", "they shook hands", {"shak hand", "shook hand", "handshake"}},
    {"they hug", "they hugged", {"hug", "embrac"}},
    {"they give each other a high five", "they gave each other a high five", {"high fiv", "high-fiv"}},
    {"they wave to each other", "they waved to each other", {"wav"}},
    {"one pushes the other", "one pushed the other", {"push", "shov"}},
    {"one throws a punch at the other", "one threw a punch at the other", {"punch"}},
    {"they bow to each other", "they bowed to each other", {"bow"}},
    {"they walk together", "they walked together", {"walk together", "walk side by side"}},
    {"one follows the other", "one followed the other", {"follow"}},
    {"one hands an object to the other", "one handed an object to the other", {"hand an object", "hand over", "handed over"}},
    {"one kicks at the other", "one kicked at the other", {"kick"}},
    {"they dance together", "they danced together", {"danc"}},
};
// The scripted sequences: each type has two possible next scenes (a story branches; "what happened
// before" is answered from the conversation, not guessed from the later scene alone).
const int kNext[motion::kNumSynthTypes][2] = {
    /*handshake*/ {1, 7},  /*hug*/ {11, 7},    /*high_five*/ {11, 1}, /*wave*/ {0, 7},
    /*push*/ {5, 10},      /*punch*/ {10, 4},  /*bow*/ {0, 11},       /*walk_together*/ {8, 9},
    /*follow*/ {4, 3},     /*hand_over*/ {6, 0}, /*kick*/ {4, 6},      /*dance*/ {6, 2},
};

// ---- user phrasings (ours): editing 32, reasoning 21, story 33 ----
const std::vector<const char*> kEditType = {
    "Change it so that {clause} instead.", "Make it a scene where {clause}.", "What if {clause} instead?",
    "Now show the same two people, but {clause}.", "Instead of that, {clause}.", "Edit the motion so that {clause}.",
    "Keep the people, but this time {clause}.", "Replace the interaction: {clause}."};
const std::vector<const char*> kEditHand = {
    "Use the other hand.", "Do it with the {side} hand instead.", "Mirror it so the {side} hand is used.",
    "Switch hands.", "Same thing, but with the {side} hand.", "Make it {side}-handed."};
const std::vector<const char*> kEditDirection = {
    "Have them go the other way around.", "Mirror the path so they turn to the {side}.", "Turn to the {side} instead.",
    "Flip the direction they move in."};
const std::vector<const char*> kEditSlow = {"Make it slower.", "Slow it down.", "Do the same thing, but slowly.",
                                            "Can they move more slowly?", "Play it at a calmer pace."};
const std::vector<const char*> kEditFast = {"Make it faster.", "Speed it up.", "Do the same thing, but quickly.",
                                            "Can they move more quickly?", "Make the whole thing snappier."};
const std::vector<const char*> kEditInitiator = {"Let the other person start it.", "Swap their roles.",
                                                 "Have the other one take the lead.", "Switch who does what."};
const std::vector<const char*> kEditIntro = {"Here is a motion.", "Look at this interaction.", "Take this scene.",
                                             "This is what they do now.", ""};
const std::vector<const char*> kShow = {"Show me this: {caption}", "Generate the motion: {caption}",
                                        "Please animate this: {caption}", "Make a motion where {caption_lc}"};
const std::vector<const char*> kAck = {"Here is the edited motion.", "Sure, here it is.", "Done.", "Okay, changed."};
const std::vector<const char*> kRemember = {"Remember this scene.", "This happened first.", "Here is the first part.",
                                            "Watch this one first.", "Look at this first scene."};
const std::vector<const char*> kOkay = {"Okay.", "Got it.", "I see it.", "Understood."};
const std::vector<const char*> kBefore = {
    "And then this happened. What did they do before this?", "This came next. What happened before it?",
    "Afterwards they did this. What had they done just before?", "Here is the later scene. What came before it?",
    "What did the two people do before this scene?"};
const std::vector<const char*> kAfter = {"Then this happened. What did they do after the first scene?",
                                         "This came next. What did they do after the first part?",
                                         "Here is what followed. What happened second?",
                                         "What did they do after the first scene, judging by this one?"};
const std::vector<const char*> kWhy = {"Why might they be doing this now?", "Why did this happen, do you think?",
                                       "What led to this?", "Explain why they do this."};
const std::vector<const char*> kShowBefore = {"Show me again what they did before this.",
                                              "Play the scene that came before this one.",
                                              "Give me the motion of the earlier scene."};
const std::vector<const char*> kStoryOpen = {
    "Tell a story in motion. It begins when {clause}.", "Let's make a short story: first {clause}.",
    "Start a story of two people where {clause}.", "Animate the beginning of a story: {clause}.",
    "Begin a little scene in which {clause}.", "Our story opens as {clause}.",
    "Make up a story about two people. To start, {clause}.", "Here is how the tale starts: {clause}.",
    "Animate a story whose first scene is this: {clause}.", "Once upon a time, {clause}. Show it."};
const std::vector<const char*> kStoryNext = {"What happens next?", "And then?", "Continue the story.",
                                             "Show what happens after that.", "What do they do next?",
                                             "Keep going.", "What comes next in the story?",
                                             "Go on with the story.", "Show the next scene.", "What happens after this?"};
const std::vector<const char*> kStoryEnd = {"How does it end?", "Finish the story.", "And finally?",
                                            "Show the last scene.", "Bring the story to an end."};
// A three-scene story starts from a scene the user gives (motion attached), so it fits in two exchanges.
const std::vector<const char*> kStoryGiven = {
    "This is how our story begins. What happens next?", "Here is the first scene of a story. Continue it.",
    "A story starts with this scene. What do they do next?", "Take this as the opening scene and go on with the story.",
    "This scene opens a story. Show the next one.", "Our tale starts like this. What comes next?",
    "Continue the story that begins with this motion.", "Here the story begins. And then?"};
const std::vector<const char*> kStoryFirst = {"It begins: ", "First, ", "At the start, "};
const std::vector<const char*> kStoryThen = {"Next, ", "Then ", "After that, "};
const std::vector<const char*> kStoryLast = {"In the end, ", "Finally, ", "To finish, "};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}
std::string capitalized(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
std::string lowered_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}
std::string trim_both(const std::string& s) {
  const auto a = s.find_first_not_of(' ');
  return a == std::string::npos ? "" : s.substr(a, s.find_last_not_of(' ') - a + 1);
}

struct Draw {
  std::mt19937_64 rng;
  int pick(size_t n) { return static_cast<int>(core::below(rng, n)); }
  double u() { return core::uniform01(rng); }
  template <class T> const T& of(const std::vector<T>& v) { return v[static_cast<size_t>(pick(v.size()))]; }
};

// One scene: features [T, 2, 262] in the pair's canonical frame, its captions and roles.
struct SceneClip {
  int type = 0;
  torch::Tensor feats;
  std::vector<std::string> captions;
  motion::SynthRoles roles;
};

SceneClip make_scene(uint64_t seed, int64_t body, int type) {
  auto c = motion::synth_clip(seed, body, static_cast<SynthType>(type));
  SceneClip s;
  s.type = type;
  s.feats = motion::joints_to_features({c.joints.select(1, 0), c.joints.select(1, 1)},
                                       {c.local_rot.select(1, 0), c.local_rot.select(1, 1)});
  s.captions = c.captions;
  s.roles = c.roles;
  return s;
}

// A clip to write: id, features, captions.
struct OutClip {
  std::string id;
  torch::Tensor feats;
  std::vector<std::string> captions;
};

struct Built {
  ConversationRecord rec;
  json meta;
  std::vector<OutClip> clips;
};

ConversationTurn user(std::string text, std::string motion = "") { return {"user", trim_both(text), std::move(motion)}; }
ConversationTurn assistant(std::string text, std::string motion = "") {
  return {"assistant", trim_both(text), std::move(motion)};
}

Built editing(const SynthConversationOptions& o, int64_t n, Draw& d, const std::string& base) {
  Built b;
  const int64_t body = 1000000 + n;
  const int type = d.pick(motion::kNumSynthTypes);
  SceneClip src = make_scene(o.seed, body, type);
  // The edit: one controlled change with a true result.
  std::vector<std::string> kinds = {"type", "speed", "initiator"};
  if (src.roles.actor_side >= 0) kinds.push_back("hand");
  if (src.roles.actor_side < 0 && src.roles.direction >= 0) kinds.push_back("direction");
  std::string kind = d.of(kinds);
  OutClip edit{base + "_edit", {}, {}};
  std::string instruction;
  int edited_type = type;
  if (kind == "type") {
    edited_type = (type + 1 + d.pick(motion::kNumSynthTypes - 1)) % motion::kNumSynthTypes;
    SceneClip e = make_scene(o.seed, body, edited_type);  // same body index: the same two people
    edit.feats = e.feats, edit.captions = e.captions;
    instruction = replace_all(d.of(kEditType), "{clause}", kWords[edited_type].present);
  } else if (kind == "hand" || kind == "direction") {
    edit.feats = mirror_features(src.feats);
    for (const auto& c : src.captions) edit.captions.push_back(mirror_caption(c));
    const int old_side = kind == "hand" ? src.roles.actor_side : src.roles.direction;
    instruction = replace_all(d.of(kind == "hand" ? kEditHand : kEditDirection), "{side}", old_side == 0 ? "left" : "right");
  } else if (kind == "speed") {
    const int64_t T = src.feats.size(0);
    const bool slow = T * 3 / 2 <= motion::kMaxClipFrames - 2 && (T < 60 || d.u() < 0.5);
    kind = slow ? "speed_slow" : "speed_fast";
    edit.feats = motion::retime_features(src.feats, slow ? kRetimeFactor : 1.0 / kRetimeFactor);
    for (const auto& c : src.captions) edit.captions.push_back(retimed_caption(c, slow));
    instruction = d.of(slow ? kEditSlow : kEditFast);
  } else {  // initiator: the same scene with the persons' order exchanged
    edit.feats = swap_persons(src.feats);
    for (const auto& c : src.captions) edit.captions.push_back(swap_caption(c));
    instruction = d.of(kEditInitiator);
  }
  const std::string src_id = base + "_src";
  const std::string ack = d.of(kAck) + std::string(" ") + edit.captions[0];
  if (d.u() < 0.5) {  // one exchange: the user gives the motion and the change together
    b.rec.turns = {user(d.of(kEditIntro) + std::string(" ") + instruction, src_id), assistant(ack, edit.id)};
  } else {  // two exchanges: the user asks for a scene, then edits the answer (refers to turn 2)
    std::string show = replace_all(d.of(kShow), "{caption}", src.captions[0]);
    show = replace_all(show, "{caption_lc}", lowered_first(src.captions[0]));
    b.rec.turns = {user(show), assistant("", src_id), user(instruction), assistant(ack, edit.id)};
  }
  b.clips.push_back({src_id, src.feats, src.captions});
  b.clips.push_back(std::move(edit));
  b.meta = {{"edit", kind},
            {"types", {motion::synth_type_name(static_cast<SynthType>(type)),
                       motion::synth_type_name(static_cast<SynthType>(edited_type))}},
            {"source", src_id},
            {"target", base + "_edit"},
            {"source_caption", src.captions[0]},
            {"target_caption", b.clips[1].captions[0]}};
  return b;
}

// 2 or 3 scenes of a scripted sequence with the same two people.
std::vector<SceneClip> sequence(const SynthConversationOptions& o, int64_t n, Draw& d, int scenes) {
  std::vector<SceneClip> s;
  int t = d.pick(motion::kNumSynthTypes);
  for (int k = 0; k < scenes; ++k) {
    s.push_back(make_scene(o.seed, 2000000 + n * 4 + k, t));
    t = kNext[t][d.pick(2)];
  }
  return s;
}

json type_names(const std::vector<SceneClip>& s) {
  json a = json::array();
  for (const auto& x : s) a.push_back(motion::synth_type_name(static_cast<SynthType>(x.type)));
  return a;
}

Built reasoning(const SynthConversationOptions& o, int64_t n, Draw& d, const std::string& base) {
  Built b;
  auto s = sequence(o, n, d, 2);
  const std::string id1 = base + "_s1", id2 = base + "_s2";
  const int form = d.pick(4);
  std::string question, answer, answer_motion;
  int answer_type = s[0].type;
  const char* forms[] = {"before", "after", "why", "show_before"};
  if (form == 0) {
    question = d.of(kBefore), answer = std::string("Before this, ") + kWords[s[0].type].past + ".";
  } else if (form == 1) {
    question = d.of(kAfter), answer = capitalized(kWords[s[1].type].past) + " after that.", answer_type = s[1].type;
  } else if (form == 2) {
    question = d.of(kWhy), answer = std::string("Because just before, ") + kWords[s[0].type].past + ".";
  } else {
    question = d.of(kShowBefore), answer = "Here is what they did before: " + lowered_first(s[0].captions[0]);
    answer_motion = id1;
  }
  b.rec.turns = {user(d.of(kRemember), id1), assistant(d.of(kOkay)), user(question, id2), assistant(answer, answer_motion)};
  b.clips = {{id1, s[0].feats, s[0].captions}, {id2, s[1].feats, s[1].captions}};
  b.meta = {{"form", forms[form]},
            {"types", type_names(s)},
            {"answer_type", motion::synth_type_name(static_cast<SynthType>(answer_type))}};
  if (!answer_motion.empty()) b.meta["target"] = answer_motion;
  return b;
}

Built story(const SynthConversationOptions& o, int64_t n, Draw& d, const std::string& base) {
  Built b;
  const int scenes = d.u() < 0.5 ? 2 : 3;
  auto s = sequence(o, n, d, scenes);
  std::vector<std::string> ids;
  for (int k = 0; k < scenes; ++k) ids.push_back(base + "_s" + std::to_string(k + 1));
  // Two scenes: the user opens in words, the assistant plays scene 1, "what happens next?" -> scene 2.
  // Three scenes: the user gives scene 1, the assistant continues with scene 2, then ends with scene 3.
  // Either way four turns, and the answer right after scene 1 is the scored one (meta "target").
  if (scenes == 2) {
    b.rec.turns.push_back(user(replace_all(d.of(kStoryOpen), "{clause}", kWords[s[0].type].present)));
    b.rec.turns.push_back(assistant(d.of(kStoryFirst) + lowered_first(s[0].captions[0]), ids[0]));
    b.rec.turns.push_back(user(d.of(kStoryNext)));
    b.rec.turns.push_back(assistant(d.of(kStoryThen) + std::string(kWords[s[1].type].present) + ".", ids[1]));
  } else {
    b.rec.turns.push_back(user(d.of(kStoryGiven), ids[0]));
    b.rec.turns.push_back(assistant(d.of(kStoryThen) + std::string(kWords[s[1].type].present) + ".", ids[1]));
    b.rec.turns.push_back(user(d.of(kStoryEnd)));
    b.rec.turns.push_back(assistant(d.of(kStoryLast) + std::string(kWords[s[2].type].present) + ".", ids[2]));
  }
  for (int k = 0; k < scenes; ++k) b.clips.push_back({ids[static_cast<size_t>(k)], s[static_cast<size_t>(k)].feats, s[static_cast<size_t>(k)].captions});
  json next = json::array();
  for (int k : kNext[s[0].type]) next.push_back(motion::synth_type_name(static_cast<SynthType>(k)));
  b.meta = {{"types", type_names(s)}, {"next_after_first", next}, {"target", ids[1]}};
  return b;
}

void write_clip(const std::string& root, const OutClip& c) {
  const std::string a = root + "/motions_processed/person1/" + c.id + ".npy";
  const std::string p = root + "/motions_processed/person2/" + c.id + ".npy";
  if (fs::exists(a) && fs::exists(p) && fs::exists(root + "/annots/" + c.id + ".txt")) return;
  auto j = motion::features_to_joints(c.feats);       // [T, 2, 22, 3]
  auto r = motion::features_to_rotations(c.feats);    // [T, 2, 21, 3, 3]
  motion::write_interhuman_clip(root, c.id, j.select(1, 0), j.select(1, 1), r.select(1, 0), r.select(1, 1), c.captions);
}

// The split list of `root` with `ids` added (existing entries kept, none repeated).
void extend_split(const std::string& root, const std::string& split, const std::vector<std::string>& ids) {
  std::vector<std::string> all;
  std::set<std::string> seen;
  const std::string path = root + "/split/" + split + ".txt";
  if (fs::exists(path)) {
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && seen.insert(line).second) all.push_back(line);
    }
  }
  for (const auto& id : ids)
    if (seen.insert(id).second) all.push_back(id);
  motion::write_interhuman_split(root, split, all);
}

}  // namespace

std::vector<std::string> named_interactions(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  for (char ch : text + " ") {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c)) {
      cur += static_cast<char>(std::tolower(c));
    } else if (!cur.empty()) {
      words.push_back(cur);
      cur.clear();
    }
  }
  std::vector<std::pair<size_t, std::string>> found;  // first position, type
  for (int t = 0; t < motion::kNumSynthTypes; ++t) {
    size_t best = std::string::npos;
    for (const char* key : kWords[t].keys) {
      std::vector<std::string> kw;
      for (char ch : replace_all(key, "-", " ") + " ") {
        if (ch == ' ') {
          if (!cur.empty()) kw.push_back(cur), cur.clear();
        } else {
          cur += ch;
        }
      }
      for (size_t i = 0; i + kw.size() <= words.size(); ++i) {
        bool ok = true;
        for (size_t k = 0; k < kw.size() && ok; ++k) ok = words[i + k].rfind(kw[k], 0) == 0;
        if (ok) {
          best = std::min(best, i);
          break;
        }
      }
    }
    if (best != std::string::npos) found.emplace_back(best, motion::synth_type_name(static_cast<SynthType>(t)));
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::vector<std::string> next_interactions(const std::string& type) {
  for (int t = 0; t < motion::kNumSynthTypes; ++t)
    if (type == motion::synth_type_name(static_cast<SynthType>(t)))
      return {motion::synth_type_name(static_cast<SynthType>(kNext[t][0])),
              motion::synth_type_name(static_cast<SynthType>(kNext[t][1]))};
  throw Error("unknown interaction type '" + type + "'");
}

SynthConversationReport write_synth_conversations(const SynthConversationOptions& o) {
  VIMO_CHECK(!o.clips_root.empty(), "data conversations --synthetic: name the dataset root that receives the clips");
  VIMO_CHECK(!o.out.empty(), "data conversations --synthetic: --out (the conversations directory) is required");
  VIMO_CHECK(o.count > 0, "data conversations --synthetic: --count must be positive");
  VIMO_CHECK(o.task_weights.size() == 3, "data conversations: task weights are editing, reasoning, story (3 numbers)");
  double wsum = 0;
  for (double w : o.task_weights) {
    VIMO_CHECK(w >= 0, "data conversations: task weights must be >= 0");
    wsum += w;
  }
  VIMO_CHECK(wsum > 0, "data conversations: at least one task weight must be positive");
  VIMO_CHECK(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1,
             "data conversations: val and test fractions must be >= 0 and sum to less than 1");
  core::ensure_writable_dir(o.clips_root);
  core::ensure_writable_dir(o.out);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Built> built(static_cast<size_t>(o.count));
  std::vector<std::string> split_of(static_cast<size_t>(o.count));
  std::mutex mu;
  core::parallel_items(o.count, o.threads, [&](int64_t n) {
    Draw d{std::mt19937_64(core::derive_seed(static_cast<int64_t>(o.seed), 0x434F4E56ULL /*CONV*/, n))};
    std::mt19937_64 split_rng(core::derive_seed(static_cast<int64_t>(o.seed), 0x53504C54ULL /*SPLT*/, n));
    const double split_u = core::uniform01(split_rng);
    const std::string split = split_u < o.test_fraction ? "test" : split_u < o.test_fraction + o.val_fraction ? "val" : "train";
    const double r = d.u() * wsum;
    const std::string task = r < o.task_weights[0] ? "editing" : r < o.task_weights[0] + o.task_weights[1] ? "reasoning" : "story";
    char base[32];
    std::snprintf(base, sizeof base, "conv%06lld", static_cast<long long>(n));
    Built b = task == "editing" ? editing(o, n, d, base) : task == "reasoning" ? reasoning(o, n, d, base) : story(o, n, d, base);
    b.rec.id = base;
    b.rec.task = task;
    // Every record passes the reader's own checks before anything is written.
    parse_conversation(conversation_line(b.rec), std::string("generated conversation ") + base);
    for (const auto& c : b.clips) write_clip(o.clips_root, c);
    json m = {{"id", base}, {"split", split}, {"task", task}};
    for (const auto& [k, v] : b.meta.items()) m[k] = v;
    b.meta = std::move(m);
    std::lock_guard<std::mutex> lock(mu);
    split_of[static_cast<size_t>(n)] = split;
    built[static_cast<size_t>(n)] = std::move(b);
  });

  SynthConversationReport rep;
  std::map<std::string, std::vector<ConversationRecord>> recs;
  std::map<std::string, std::vector<std::string>> ids;
  json meta = json::array();
  for (int64_t n = 0; n < o.count; ++n) {
    auto& b = built[static_cast<size_t>(n)];
    const auto& split = split_of[static_cast<size_t>(n)];
    for (const auto& c : b.clips) ids[split].push_back(c.id);
    rep.clips += static_cast<int64_t>(b.clips.size());
    rep.turns += static_cast<int64_t>(b.rec.turns.size());
    ++rep.per_task[b.rec.task];
    if (b.meta.contains("edit")) ++rep.per_edit[b.meta["edit"].get<std::string>()];
    recs[split].push_back(std::move(b.rec));
    meta.push_back(std::move(b.meta));
  }
  for (const char* split : {"train", "val", "test"}) {
    extend_split(o.clips_root, split, ids[split]);
    write_conversations(o.out + "/" + split + ".jsonl", recs[split]);
  }
  json all = {{"generator", "vimo data conversations --synthetic"}, {"seed", o.seed}, {"count", o.count},
              {"clips_root", fs::absolute(o.clips_root).lexically_normal().string()}, {"conversations", meta}};
  core::write_file_atomic(o.out + "/meta.json", all.dump(1) + "\n");
  rep.conversations = o.count;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace vimo::data

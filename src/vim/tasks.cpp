// Tasks, templates, sample conversations and the deterministic task mixture (vim/tasks.h).
#include "vimo/vim/tasks.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <random>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/rng.h"

namespace vimo::vim {

extern const char* const kBuiltinTemplates;  // generated: builtin_templates.cpp

namespace {

constexpr uint64_t kSampleStream = 0x53414d504c45ull;  // "SAMPLE"
const std::vector<std::string> kPlaceholders = {"{caption}", "{motion}", "{motion_a}", "{motion_b}"};

std::string list_key(Task t, bool with_caption) {
  return task_name(t) + (with_caption && (t == Task::kA2B || t == Task::kB2A) ? "_caption" : "");
}

// Placeholders a template of `key` must hold (all of them) and may hold (no others).
std::vector<std::string> required(const std::string& key) {
  if (key == "t2m" || key == "t2m_single") return {"{caption}"};
  if (key == "m2t") return {"{motion}"};
  if (key == "m2t_single") return {"{motion_a}"};
  if (key == "a2b") return {"{motion_a}"};
  if (key == "b2a") return {"{motion_b}"};
  if (key == "a2b_caption") return {"{motion_a}", "{caption}"};
  if (key == "b2a_caption") return {"{motion_b}", "{caption}"};
  return {};
}

}  // namespace

const std::vector<Task>& all_tasks() {
  static const std::vector<Task> t = {Task::kT2M, Task::kM2T, Task::kA2B, Task::kB2A, Task::kT2MSingle, Task::kM2TSingle};
  return t;
}

std::string task_name(Task t) {
  switch (t) {
    case Task::kT2M: return "t2m";
    case Task::kM2T: return "m2t";
    case Task::kA2B: return "a2b";
    case Task::kB2A: return "b2a";
    case Task::kT2MSingle: return "t2m_single";
    case Task::kM2TSingle: return "m2t_single";
  }
  return "?";
}

Task parse_task(const std::string& name, const std::string& what) {
  for (Task t : all_tasks())
    if (task_name(t) == name) return t;
  std::string known;
  for (Task t : all_tasks()) known += " " + task_name(t);
  throw Error(what + ": unknown task '" + name + "' (known:" + known + ")");
}

bool task_needs_pair(Task t) { return t != Task::kT2MSingle && t != Task::kM2TSingle; }
bool task_needs_caption(Task t) { return t == Task::kT2M || t == Task::kM2T || t == Task::kT2MSingle || t == Task::kM2TSingle; }
bool task_from_caption(Task t) { return t == Task::kT2M || t == Task::kT2MSingle; }

std::optional<text::Segment::Kind> response_motion(Task t) {
  switch (t) {
    case Task::kT2M: return text::Segment::Kind::kMotion;
    case Task::kA2B: return text::Segment::Kind::kMotionB;
    case Task::kB2A: return text::Segment::Kind::kMotionA;
    case Task::kT2MSingle: return text::Segment::Kind::kMotionA;
    default: return std::nullopt;
  }
}

Templates Templates::load(const std::string& path) {
  VIMO_CHECK(std::filesystem::exists(path), "template file '" + path + "' does not exist (data.templates); "
                                            "leave data.templates empty for the built-in templates");
  return parse(core::read_file(path), path);
}

Templates Templates::builtin() { return parse(kBuiltinTemplates, "builtin:configs/templates/pretrain.yaml"); }

Templates Templates::load_or_builtin(const std::string& path) { return path.empty() ? builtin() : load(path); }

Templates Templates::parse(const std::string& yaml, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw Error("template file '" + path + "' is not valid YAML: " + e.what());
  }
  VIMO_CHECK(root.IsMap(), "template file '" + path + "' must map task names (t2m, m2t, a2b, ...) to lists of phrasings");
  Templates t;
  t.path_ = path;
  t.yaml_ = yaml;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const auto req = required(key);
    const std::string at = "'" + path + "' line " + std::to_string(kv.first.Mark().line + 1);
    VIMO_CHECK(!req.empty(), at + ": unknown template list '" + key +
                                 "' (known: t2m m2t a2b b2a a2b_caption b2a_caption t2m_single m2t_single)");
    VIMO_CHECK(kv.second.IsSequence() && kv.second.size() > 0, at + ": '" + key + "' must be a non-empty list of strings");
    std::vector<std::string> list;
    for (const auto& e : kv.second) {
      const std::string where = "'" + path + "' line " + std::to_string(e.Mark().line + 1) + " (" + key + ")";
      VIMO_CHECK(e.IsScalar(), where + ": each phrasing must be a string");
      const std::string s = e.as<std::string>();
      for (const auto& p : kPlaceholders) {
        const bool need = std::find(req.begin(), req.end(), p) != req.end();
        const bool has = s.find(p) != std::string::npos;
        VIMO_CHECK(!need || has, where + ": the phrasing \"" + s + "\" lacks the placeholder " + p);
        VIMO_CHECK(need || !has, where + ": the phrasing \"" + s + "\" holds " + p + ", which a " + key + " prompt may not give");
        VIMO_CHECK(!has || s.find(p, s.find(p) + 1) == std::string::npos, where + ": " + p + " appears twice in \"" + s + "\"");
      }
      list.push_back(s);
    }
    t.lists_[key] = std::move(list);
  }
  return t;
}

bool Templates::has(Task t, bool with_caption) const { return lists_.count(list_key(t, with_caption)) > 0; }

const std::vector<std::string>& Templates::get(Task t, bool with_caption) const {
  auto it = lists_.find(list_key(t, with_caption));
  VIMO_CHECK(it != lists_.end(), "template file '" + path_ + "' has no '" + list_key(t, with_caption) + "' list");
  return it->second;
}

text::Segment motion_segment(const torch::Tensor& codes, text::Segment::Kind kind, int64_t layers) {
  VIMO_CHECK(codes.dim() == 3 && codes.size(2) >= layers, "motion codes must be [T, P, Q>=" + std::to_string(layers) +
                                                               "], got " + c10::str(codes.sizes()));
  torch::Tensor c = codes.narrow(2, 0, layers);
  if (kind == text::Segment::Kind::kMotionA) c = c.narrow(1, 0, 1);
  else if (kind == text::Segment::Kind::kMotionB) c = c.narrow(1, 1, 1);
  else VIMO_CHECK(codes.size(1) == 2, "a two-person motion block needs codes of both persons");
  c = c.contiguous().to(torch::kInt);
  text::Segment s;
  s.kind = kind;
  s.codes.assign(c.data_ptr<int>(), c.data_ptr<int>() + c.numel());
  return s;
}

torch::Tensor segment_codes(const text::Segment& s, int64_t layers) {
  if (s.kind == text::Segment::Kind::kText) return {};
  const int64_t P = s.kind == text::Segment::Kind::kMotion ? 2 : 1;
  const int64_t T = static_cast<int64_t>(s.codes.size()) / (P * layers);
  if (T == 0) return {};
  std::vector<int64_t> c(s.codes.begin(), s.codes.begin() + T * P * layers);
  return torch::tensor(c, torch::kLong).reshape({T, P, layers});
}

std::string turn_text(const text::Turn& t) {
  std::string s;
  for (const auto& g : t.segments)
    if (g.kind == text::Segment::Kind::kText) s += (s.empty() ? "" : " ") + g.text;
  return s;
}

std::vector<text::Segment> fill_template(const std::string& tmpl, const std::string& caption, const torch::Tensor& codes,
                                         int64_t layers) {
  std::vector<text::Segment> out;
  std::string buf;
  auto flush = [&] {
    if (!buf.empty()) out.push_back({text::Segment::Kind::kText, buf, {}});
    buf.clear();
  };
  for (size_t i = 0; i < tmpl.size();) {
    bool hit = false;
    for (const auto& p : kPlaceholders) {
      if (tmpl.compare(i, p.size(), p) != 0) continue;
      hit = true;
      i += p.size();
      if (p == "{caption}") {
        buf += caption;
      } else {
        flush();
        const auto kind = p == "{motion}" ? text::Segment::Kind::kMotion
                          : p == "{motion_a}" ? text::Segment::Kind::kMotionA
                                              : text::Segment::Kind::kMotionB;
        out.push_back(motion_segment(codes, kind, layers));
      }
      break;
    }
    if (!hit) buf += tmpl[i++];
  }
  flush();
  return out;
}

text::Conversation build_prompt(const Templates& t, Task task, int tmpl, const std::string& caption,
                                const torch::Tensor& codes, int64_t layers, bool with_caption) {
  const auto& list = t.get(task, with_caption);
  text::Turn user;
  user.role = text::Role::kUser;
  user.segments = fill_template(list[static_cast<size_t>(tmpl) % list.size()], caption, codes, layers);
  return {user};
}

text::Conversation build_conversation(const Templates& t, const Sample& s, const data::TokenClip& clip, int64_t layers) {
  const std::string caption =
      clip.captions.empty() ? std::string() : clip.captions[static_cast<size_t>(s.caption) % clip.captions.size()];
  auto conv = build_prompt(t, s.task, s.tmpl, s.uncond ? std::string() : caption, clip.codes, layers, s.with_caption);
  text::Turn reply;
  reply.role = text::Role::kAssistant;
  if (auto kind = response_motion(s.task)) reply.segments.push_back(motion_segment(clip.codes, *kind, layers));
  else reply.segments.push_back({text::Segment::Kind::kText, caption, {}});
  conv.push_back(std::move(reply));
  return conv;
}

SampleStream::SampleStream(const data::TokenCache& cache, const Templates& templates, TaskMix mix, int64_t seed)
    : cache_(cache),
      templates_(templates),
      reaction_caption_(mix.reaction_caption),
      caption_dropout_(mix.caption_dropout),
      seed_(seed) {
  VIMO_CHECK(mix.tasks.size() == mix.weights.size(), "data.tasks and data.task_weights must have the same length (" +
                                                         std::to_string(mix.tasks.size()) + " vs " +
                                                         std::to_string(mix.weights.size()) + ")");
  double total = 0;
  std::vector<double> w;
  for (size_t i = 0; i < mix.tasks.size(); ++i) {
    const Task t = mix.tasks[i];
    VIMO_CHECK(mix.weights[i] >= 0, "data.task_weights: weight of " + task_name(t) + " is negative");
    if (mix.weights[i] == 0) continue;
    std::vector<int64_t> clips;
    for (int64_t c = 0; c < cache.size(); ++c) {
      const auto tc = cache.clip(c);
      if (task_needs_pair(t) != (tc.persons == 2)) continue;
      if (task_needs_caption(t) && tc.captions.empty()) continue;
      clips.push_back(c);
    }
    if (clips.empty()) {
      static std::set<std::string> said;  // once per cache and task, however many streams read it
      if (said.insert(cache.path() + "\n" + task_name(t)).second)
        log::info("task ", task_name(t), ": no eligible clip in '", cache.path(), "' (",
                  task_needs_pair(t) ? "two-person" : "single-person", " clips needed); dropped");
      continue;
    }
    templates.get(t, false);  // the list must exist
    if (t == Task::kA2B || t == Task::kB2A) {
      if (reaction_caption_ > 0) templates.get(t, true);
    }
    clips_[t] = std::move(clips);
    tasks_.push_back(t);
    w.push_back(mix.weights[i]);
    total += mix.weights[i];
  }
  VIMO_CHECK(!tasks_.empty(), "no task of data.tasks can be trained on '" + cache.path() + "' (see the lines above)");
  double acc = 0;
  for (double x : w) cum_.push_back(acc += x / total);
  cum_.back() = 1.0;
}

const std::vector<int64_t>& SampleStream::clips_of(Task t) const {
  auto it = clips_.find(t);
  VIMO_CHECK(it != clips_.end(), "task " + task_name(t) + " is not part of this mixture");
  return it->second;
}

Sample SampleStream::draw(int64_t n) const {
  std::mt19937_64 rng(core::derive_seed(seed_, kSampleStream, n));
  const double u = core::uniform01(rng);
  size_t k = 0;
  while (k + 1 < cum_.size() && u >= cum_[k]) ++k;
  Sample s;
  s.task = tasks_[k];
  const auto& clips = clips_.at(s.task);
  s.clip = clips[core::below(rng, clips.size())];
  const bool reaction = s.task == Task::kA2B || s.task == Task::kB2A;
  s.with_caption = reaction && core::uniform01(rng) < reaction_caption_;
  const auto& tc = cache_.clip(s.clip);
  if (reaction && s.with_caption && tc.captions.empty()) s.with_caption = false;
  s.tmpl = static_cast<int>(core::below(rng, templates_.get(s.task, s.with_caption).size()));
  s.caption = tc.captions.empty() ? 0 : static_cast<int>(core::below(rng, tc.captions.size()));
  // Drawn last and only when on, so a mixture without dropout draws exactly as before.
  if (caption_dropout_ > 0 && task_from_caption(s.task))
    s.uncond = core::uniform01(rng) < caption_dropout_;
  return s;
}

}  // namespace vimo::vim

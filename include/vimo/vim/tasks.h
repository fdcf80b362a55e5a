// The motion-language tasks of VIM's stage 2 (t2m, m2t, reactions, single-person t2m/m2t), their
// instruction templates (a YAML file of phrasings with placeholders) and the conversation each
// training sample or generation request becomes.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vimo/data/token_cache.h"
#include "vimo/text/chat.h"

namespace vimo::vim {

enum class Task { kT2M, kM2T, kA2B, kB2A, kT2MSingle, kM2TSingle };
constexpr int kNumTasks = 6;
const std::vector<Task>& all_tasks();
std::string task_name(Task t);  // "t2m", "m2t", "a2b", "b2a", "t2m_single", "m2t_single"
// Throws naming `what` and the known names when `name` is not a task.
Task parse_task(const std::string& name, const std::string& what);
bool task_needs_pair(Task t);        // two persons present
bool task_needs_caption(Task t);     // t2m, m2t (and reactions with the caption)
bool task_from_caption(Task t);      // t2m, t2m_single: the caption alone asks for the motion
// What the assistant answers with: a motion block of this kind, or text (nullopt).
std::optional<text::Segment::Kind> response_motion(Task t);

// Phrasings per task. Placeholders: {caption}, {motion} (both persons), {motion_a}, {motion_b}.
// Keys: t2m, m2t, a2b, b2a, t2m_single, m2t_single, and a2b_caption / b2a_caption (reaction
// prompts that also give the caption).
class Templates {
 public:
  // Reads and checks the file: every list non-empty, every entry holds its task's required
  // placeholders and no other (e.g. a t2m prompt may not hold the motion it asks for).
  static Templates load(const std::string& path);
  // The same checks on YAML text; `name` stands for the file in messages.
  static Templates parse(const std::string& yaml, const std::string& name);
  // The templates compiled in from configs/templates/pretrain.yaml.
  static Templates builtin();
  // `path`, or the built-in templates when it is empty.
  static Templates load_or_builtin(const std::string& path);
  const std::vector<std::string>& get(Task t, bool with_caption) const;
  bool has(Task t, bool with_caption) const;
  const std::string& path() const { return path_; }
  const std::string& yaml() const { return yaml_; }  // the text it was read from (copied into runs)

 private:
  std::string path_, yaml_;
  std::map<std::string, std::vector<std::string>> lists_;
};

// Codes [T', P, Q] int64 of a clip -> a motion segment of `kind` using the first `layers` levels.
text::Segment motion_segment(const torch::Tensor& codes, text::Segment::Kind kind, int64_t layers);
// Its inverse: a motion segment's codes [T', P, layers] int64 (P = 2 for <motion>, 1 for <motion_a|b>), a
// trailing partial step dropped; undefined for a text segment or one without a whole step.
torch::Tensor segment_codes(const text::Segment& s, int64_t layers);
// The text segments of a turn joined by single spaces (its motion blocks left out).
std::string turn_text(const text::Turn& t);
// A user prompt from a template: text pieces and motion segments in template order.
std::vector<text::Segment> fill_template(const std::string& tmpl, const std::string& caption,
                                         const torch::Tensor& codes, int64_t layers);

// One training sample: which task on which clip, with which phrasing and caption.
struct Sample {
  Task task = Task::kT2M;
  int64_t clip = 0;
  int tmpl = 0;
  int caption = 0;
  bool with_caption = false;
  bool uncond = false;  // t2m without its caption (classifier-free guidance's unconditional model)
};

// The two-turn conversation of a sample: user = filled template, assistant = the response (the clip's
// caption, or its motion block). `layers` = quantizer levels the LM sees.
text::Conversation build_conversation(const Templates& t, const Sample& s, const data::TokenClip& clip, int64_t layers);
// A generation prompt: the user turn alone (the response is generated).
text::Conversation build_prompt(const Templates& t, Task task, int tmpl, const std::string& caption,
                                const torch::Tensor& codes, int64_t layers, bool with_caption);

// Task mixture over a token cache: sample n = f(seed, n) (core/rng.h), so the data position is one counter.
struct TaskMix {
  std::vector<Task> tasks;
  std::vector<double> weights;
  double reaction_caption = 0.5;  // probability a reaction prompt also gives the caption
  double caption_dropout = 0;     // probability a t2m prompt leaves its caption out
};
class SampleStream {
 public:
  // Tasks without an eligible clip (e.g. single-person tasks on two-person data) are dropped with a
  // log line; at least one task must remain.
  SampleStream(const data::TokenCache& cache, const Templates& templates, TaskMix mix, int64_t seed);
  Sample draw(int64_t n) const;
  const std::vector<Task>& tasks() const { return tasks_; }
  // Eligible clips of a task (for validation sets).
  const std::vector<int64_t>& clips_of(Task t) const;

 private:
  const data::TokenCache& cache_;
  const Templates& templates_;
  std::vector<Task> tasks_;
  std::vector<double> cum_;  // cumulative normalized weights
  std::map<Task, std::vector<int64_t>> clips_;
  double reaction_caption_;
  double caption_dropout_;
  int64_t seed_;
};

}  // namespace vimo::vim

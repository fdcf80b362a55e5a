// The group protocol: synthetic scenes of N >= 3 people composed by a two-person LM run (vim/group.h)
// and scored against the synthetic ground truth: per-pair R-precision, MM-Dist and FID with the pair
// evaluator, inter-person penetration, foot skating, and the timing of the scripted contacts.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "vimo/motion/synth_group.h"
#include "vimo/vim/group.h"

namespace vimo::eval {

struct GroupProtocolOptions {
  std::string run;         // the LM run (t2m and a2b trained)
  std::string evaluator;   // the pair evaluator (run, checkpoint or converted .safetensors)
  std::string clip_vocab;
  std::string protocol = "intergen";
  int persons = 3;
  int64_t scenes = 24;     // synthetic scenes, the types alternating
  uint64_t scene_seed = 7;  // their seed; the FID reference set uses scene_seed + 1
  int64_t replications = 20;
  int64_t batch_size = 0;  // R-precision pool of pairs; 0 = min(32, pairs)
  int64_t seed = 0;        // the metric draws
  vim::GenerateSettings sampling;
  vim::GroupOptions group;  // persons, texts and anchors are set per scene
  double contact_radius_m = 0.2;  // wrist to wrist: the hands reach beyond the wrists
  std::string out;         // default <run>/eval/group<N>_synthetic.json (markdown beside it)
};

// First frame where c.joint_a of person c.a comes within `radius_m` of c.joint_b of person c.b; -1 if
// never. joints [T, N, 22, 3].
int64_t contact_onset(const torch::Tensor& joints, const motion::GroupContact& c, double radius_m);

// Mean over every pair of persons (i < j) of eval::penetration(...).ratio. joints [T, N, 22, 3].
// forearms = false leaves the forearms out (each wrist put on its elbow, so the forearm capsule shrinks
// into the upper arm's end): hands that shake or join then count as no overlap.
double group_penetration(const torch::Tensor& joints, bool forearms = true);

// Writes the JSON ({"task": "group", "split": "synthetic", "protocol", "replications", "persons",
// "rows": {"gt", "model"}}) and a markdown table; returns the JSON. Generation is cached per scene
// under <run>/eval/samples/group<N>/, so a killed evaluation continues.
nlohmann::ordered_json evaluate_group(const GroupProtocolOptions& o);

}  // namespace vimo::eval

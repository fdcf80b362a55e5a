// Synthetic two-person interactions: procedural choreography of 12 interaction types on varied
// bodies, captions from templates, and a writer of whole datasets in InterHuman's on-disk layout.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vimo::motion {

enum class SynthType {
  kHandshake, kHug, kHighFive, kWave, kPush, kPunch, kBow, kWalkTogether, kFollow, kHandOver, kKick, kDance
};
constexpr int kNumSynthTypes = 12;
const char* synth_type_name(SynthType t);  // "handshake", "hug", ...

// Who does what, as the captions state it. Sides: 0 right, 1 left, -1 not applicable.
struct SynthRoles {
  int actor = 0;            // person index (0 or 1) who starts the interaction
  int actor_side = -1;      // the hand (or foot, for kick) the actor uses
  int partner_side = -1;    // the hand the partner answers with
  int direction = -1;       // walk / follow / dance: turning or circling to the actors' right (0) or left (1)
  std::string variant;      // e.g. "both_approach", "dodge_left", "block", "hold_hands"
};

struct SynthClip {
  std::string id;
  SynthType type = SynthType::kHandshake;
  SynthRoles roles;
  torch::Tensor joints;     // [T, 2, 22, 3] float32, Y up, metres, 30 fps
  torch::Tensor local_rot;  // [T, 2, 22, 3, 3] float32, SMPL convention (joint 0: pelvis world)
  std::vector<std::string> captions;  // 3
};

// One clip; identical for identical (seed, index, type) on every platform.
SynthClip synth_clip(uint64_t seed, int64_t index, SynthType type);
// The index-th clip of a dataset: types cycle so every type is equally frequent.
SynthClip synth_clip(uint64_t seed, int64_t index);

struct SynthOptions {
  std::string out;     // InterHuman root to write
  int64_t clips = 2000;
  uint64_t seed = 0;
  double val_fraction = 0.05, test_fraction = 0.15;
  int threads = 0;     // 0: all hardware threads
};
struct SynthReport {
  int64_t clips = 0, frames = 0;
  std::vector<int64_t> per_type;  // kNumSynthTypes counts
  double seconds = 0;
};
// Writes motions_processed/person1|2/<id>.npy, annots/<id>.txt and split/{train,val,test}.txt
// through the InterHuman writer. A rerun skips clips whose files exist (same seed: same content).
SynthReport write_synth_dataset(const SynthOptions& opts);

// Measures of realism used by tests and docs. joints [T, 22, 3] of one person, Y up.
struct FootStats {
  double slide_mean_mm = 0;   // mean horizontal displacement per frame of foot joints in contact
  double slide_p95_mm = 0;    // its 95th percentile
  double lowest_mm = 0;       // lowest foot joint height over the clip
  int64_t contact_frames = 0;
};
// A foot joint (ankles, toes) is in contact on frames where it and its previous-frame position are
// within `contact_height` of its lowest height in the clip.
FootStats foot_stats(const torch::Tensor& joints, double contact_height = 0.01);

}  // namespace vimo::motion

// Synthetic clips: runs an interaction script, plans steps, solves poses and writes captions.
#include "vimo/core/error.h"
#include "vimo/motion/synth_script.h"

namespace vimo::motion {
std::vector<std::string> synth_captions(SynthType type, const SynthRoles& roles, synth::Rng& rng);

namespace {
using namespace synth;

void (*const kScripts[kNumSynthTypes])(Scene&) = {handshake, hug,           high_five, wave,      push, punch,
                                                  bow,       walk_together, follow,    hand_over, kick, dance};
const char* const kNames[kNumSynthTypes] = {"handshake", "hug",           "high_five", "wave",      "push", "punch",
                                            "bow",       "walk_together", "follow",    "hand_over", "kick", "dance"};

}  // namespace

namespace synth {

std::pair<torch::Tensor, torch::Tensor> solve_people(Person* const* people, int n, int T, const M3& rw, V3 shift) {
  auto joints = torch::empty({T, n, kNumJoints, 3}, torch::kFloat32);
  auto rots = torch::empty({T, n, kNumJoints, 3, 3}, torch::kFloat32);
  float* J = joints.data_ptr<float>();
  float* R = rots.data_ptr<float>();
  for (int q = 0; q < n; ++q) {
    auto& person = *people[q];
    plan_steps(person.body, person.f, person.step_time);
    for (int t = 0; t < T; ++t) {
      auto out = solve_pose(person.body, person.f[t]);
      out.local[0] = rw * out.local[0];
      for (int j = 0; j < kNumJoints; ++j) {
        V3 p = rw * out.joints[j] + shift;
        float* o = J + ((static_cast<int64_t>(t) * n + q) * kNumJoints + j) * 3;
        o[0] = static_cast<float>(p.x), o[1] = static_cast<float>(p.y), o[2] = static_cast<float>(p.z);
        float* r = R + ((static_cast<int64_t>(t) * n + q) * kNumJoints + j) * 9;
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) r[a * 3 + b] = static_cast<float>(out.local[j].m[a][b]);
      }
    }
  }
  return {joints, rots};
}

}  // namespace synth

const char* synth_type_name(SynthType t) { return kNames[static_cast<int>(t)]; }

SynthClip synth_clip(uint64_t seed, int64_t index, SynthType type) {
  Rng rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index) * 0xD1B54A32D192ED03ULL + 0x5851F42D4C957F2DULL);
  rng.next();
  Scene s;
  s.rng = &rng;
  s.roles.actor = rng.chance(0.3) ? 1 : 0;
  s.p[0].body = make_body(rng);
  s.p[1].body = make_body(rng);
  s.p[0].step_time = rng.uniform(0.36, 0.44), s.p[1].step_time = rng.uniform(0.36, 0.44);
  kScripts[static_cast<int>(type)](s);
  if (s.end > 0 && s.end < s.T) {
    s.T = std::max(s.end, kMinClipFrames);
    for (auto& q : s.p) q.f.resize(static_cast<size_t>(s.T));
  }
  VIMO_CHECK(s.T >= kMinClipFrames && s.T <= kMaxClipFrames,
             std::string("synth: script ") + synth_type_name(type) + " made " + std::to_string(s.T) + " frames");
  const double world_yaw = rng.uniform(-M_PI, M_PI);
  const V3 shift{rng.uniform(-1, 1), 0, rng.uniform(-1, 1)};
  Person* people[2] = {&s.p[0], &s.p[1]};
  auto [joints, rots] = solve_people(people, 2, s.T, M3::ry(world_yaw), shift);
  SynthClip c;
  c.id = std::to_string(index + 1);
  c.type = type;
  c.roles = s.roles;
  c.joints = joints;
  c.local_rot = rots;
  c.captions = synth_captions(type, s.roles, rng);
  return c;
}

SynthClip synth_clip(uint64_t seed, int64_t index) {
  return synth_clip(seed, index, static_cast<SynthType>(index % kNumSynthTypes));
}

}  // namespace vimo::motion

// Synthetic interactions: determinism, every type, captions that match roles and handedness, feet on
// the floor, bounded foot sliding, joint limits and rigid bones.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "vimo/motion/kinematics.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth.h"

namespace vimo::motion {
namespace {

using torch::indexing::Slice;

// 4 clips of every type (48), made once for all tests.
const std::vector<SynthClip>& clips() {
  static std::vector<SynthClip> c = [] {
    std::vector<SynthClip> v;
    for (int64_t i = 0; i < 4 * kNumSynthTypes; ++i) v.push_back(synth_clip(11, i));
    return v;
  }();
  return c;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(MotionSynth, DeterministicPerSeed) {
  auto a = synth_clip(5, 17), b = synth_clip(5, 17), c = synth_clip(6, 17);
  EXPECT_TRUE(torch::equal(a.joints, b.joints));
  EXPECT_EQ(a.captions, b.captions);
  EXPECT_FALSE(a.joints.sizes() == c.joints.sizes() && torch::equal(a.joints, c.joints));
}

TEST(MotionSynth, EveryTypeWithThreeDistinctCaptions) {
  std::set<int> types;
  for (const auto& c : clips()) {
    types.insert(static_cast<int>(c.type));
    ASSERT_EQ(c.captions.size(), 3u) << synth_type_name(c.type);
    EXPECT_EQ(std::set<std::string>(c.captions.begin(), c.captions.end()).size(), 3u) << c.captions[0];
    EXPECT_GE(c.joints.size(0), kMinClipFrames);
    EXPECT_LE(c.joints.size(0), kMaxClipFrames);
    EXPECT_TRUE(torch::isfinite(c.joints).all().item<bool>());
  }
  EXPECT_EQ(types.size(), static_cast<size_t>(kNumSynthTypes));
}

// Local rotations and joints agree with the library's forward kinematics (offsets from frame 0).
TEST(MotionSynth, RotationsReproduceJointsThroughForwardKinematics) {
  for (int k : {0, 5, 10}) {
    const auto& c = clips()[static_cast<size_t>(k)];
    for (int p = 0; p < 2; ++p) {
      auto j = c.joints.select(1, p).to(torch::kFloat64), r = c.local_rot.select(1, p).to(torch::kFloat64);
      // Rest offsets of this body: offset_j = G_parent(0)^T (p_j(0) - p_parent(0)).
      torch::Tensor g;
      forward_kinematics(r.index({Slice(0, 1)}), j.index({Slice(0, 1), 0}), rest_offsets(), &g);
      auto off = torch::zeros({kNumJoints, 3}, torch::kFloat64);
      for (int q = 1; q < kNumJoints; ++q)
        off[q] = g[0][kParents[q]].transpose(0, 1).matmul(j[0][q] - j[0][kParents[q]]);
      auto fk = forward_kinematics(r, j.index({Slice(), 0}), off);
      EXPECT_LT((fk - j).abs().max().item<double>(), 2e-4) << synth_type_name(c.type);
    }
  }
}

TEST(MotionSynth, FeetOnTheFloorAndLittleSliding) {
  double slide_sum = 0, p95_max = 0;
  int64_t n = 0;
  for (const auto& c : clips())
    for (int p = 0; p < 2; ++p) {
      auto j = c.joints.select(1, p);
      auto feet = j.index({Slice(), torch::tensor(std::vector<int64_t>{kLeftAnkle, kLeftFoot, kRightAnkle, kRightFoot}), 1});
      // Some foot joint touches the floor on nearly every frame and none goes below it. (In the
      // fastest walks the stance foot can lift for a few frames; docs/synthetic.md.)
      auto grounded = (std::get<0>(feet.min(1)) < 0.02).to(torch::kFloat64).mean().item<double>();
      EXPECT_GT(grounded, 0.95) << synth_type_name(c.type);
      EXPECT_GT(feet.min().item<double>(), -0.015) << synth_type_name(c.type);
      auto s = foot_stats(j);
      slide_sum += s.slide_mean_mm * static_cast<double>(s.contact_frames);
      n += s.contact_frames;
      p95_max = std::max(p95_max, s.slide_p95_mm);
    }
  const double mean = slide_sum / static_cast<double>(n);
  RecordProperty("foot_slide_mean_mm", std::to_string(mean));
  EXPECT_LT(mean, 1.0);     // mm per frame, the bound stated in docs/synthetic.md
  EXPECT_LT(p95_max, 5.0);  // mm per frame
}

TEST(MotionSynth, JointLimits) {
  for (const auto& c : clips())
    for (int p = 0; p < 2; ++p) {
      auto j = c.joints.select(1, p).to(torch::kFloat64);
      auto ang = [&](int a, int b, int d) {  // interior angle at b, degrees, [T]
        auto u = j.select(1, a) - j.select(1, b), v = j.select(1, d) - j.select(1, b);
        return torch::rad2deg(torch::acos(((u * v).sum(-1) / (u.norm(2, -1) * v.norm(2, -1))).clamp(-1, 1)));
      };
      for (int s = 0; s < 2; ++s) {
        int hip = s ? kLeftHip : kRightHip, sh = s ? kLeftShoulder : kRightShoulder;
        EXPECT_GT(ang(hip, hip + 3, hip + 6).min().item<double>(), 35.0) << synth_type_name(c.type);  // knee <= 145
        EXPECT_GT(ang(sh, sh + 2, sh + 4).min().item<double>(), 25.0) << synth_type_name(c.type);     // elbow <= 155
        // Knees bend forwards: the knee never lies more than 3 cm behind the hip-ankle line.
        auto mid = (j.select(1, hip) + j.select(1, hip + 6)) / 2, toe = j.select(1, hip + 9) - j.select(1, hip + 6);
        auto ahead = ((j.select(1, hip + 3) - mid) * toe).sum(-1) / toe.norm(2, -1);
        EXPECT_GT(ahead.min().item<double>(), -0.03) << synth_type_name(c.type);
      }
      // The trunk never bends more than 70 degrees from upright; the head stays within 80 degrees of the neck line.
      auto trunk = j.select(1, kNeck) - j.select(1, kPelvis);
      auto up = torch::tensor({0.0, 1.0, 0.0}, torch::kFloat64).expand_as(trunk);
      auto tilt = torch::rad2deg(torch::acos(((trunk * up).sum(-1) / trunk.norm(2, -1)).clamp(-1, 1)));
      EXPECT_LT(tilt.max().item<double>(), 70.0) << synth_type_name(c.type);
      // (the rest pose already bends 50 degrees there)
      EXPECT_LT((180.0 - ang(kSpine3, kNeck, kHead)).max().item<double>(), 80.0) << synth_type_name(c.type);
    }
}

// Path length of a wrist relative to the pelvis, which separates the gesturing hand from the other.
double wrist_travel(const SynthClip& c, int person, int side) {
  auto j = c.joints.select(1, person).to(torch::kFloat64);
  auto rel = j.select(1, side == 0 ? kRightWrist : kLeftWrist) - j.select(1, kPelvis);
  return (rel.index({Slice(1)}) - rel.index({Slice(0, -1)})).norm(2, -1).sum().item<double>();
}

TEST(MotionSynth, CaptionsHoldNoUnexpandedPlaceholderOrChoice) {
  for (int t = 0; t < kNumSynthTypes; ++t)
    for (int64_t i = 0; i < 40; ++i)
      for (const auto& cap : synth_clip(5, i, static_cast<SynthType>(t)).captions)
        EXPECT_EQ(cap.find_first_of("{}[]|"), std::string::npos) << cap;
}

TEST(MotionSynth, CaptionsMatchRolesAndHandedness) {
  const char* word[2] = {"right", "left"};
  for (int64_t i = 0; i < 60; ++i) {
    auto c = synth_clip(23, i, i % 2 ? SynthType::kWave : SynthType::kHighFive);
    const int a = c.roles.actor, b = 1 - a;
    EXPECT_GT(wrist_travel(c, a, c.roles.actor_side), 1.5 * wrist_travel(c, a, 1 - c.roles.actor_side));
    EXPECT_GT(wrist_travel(c, b, c.roles.partner_side), 1.5 * wrist_travel(c, b, 1 - c.roles.partner_side));
    for (const auto& cap : c.captions) {
      auto l = lower(cap);
      EXPECT_NE(l.find(word[c.roles.actor_side]), std::string::npos) << cap;
      if (c.roles.actor_side != c.roles.partner_side) EXPECT_NE(l.find(word[c.roles.partner_side]), std::string::npos) << cap;
    }
  }
}

// Each caption names every scripted attribute of its clip: who starts (the actor's name comes first
// in the caption whenever the roles differ), the approach variant, whether the waved-at partner turns,
// the path or circling direction. Without them a caption fits clips with other scripts equally well.
TEST(MotionSynth, CaptionsNameEveryScriptedAttribute) {
  const char* word[2] = {"right", "left"};
  auto names = [](int person) { return std::vector<std::string>{person ? "second person" : "first person", person ? "person b" : "person a"}; };
  auto first_at = [](const std::string& l, const std::vector<std::string>& forms) {
    size_t at = std::string::npos;
    for (const auto& f : forms) at = std::min(at, l.find(f));
    return at;
  };
  for (int t = 0; t < kNumSynthTypes; ++t)
    for (int64_t i = 0; i < 30; ++i) {
      auto c = synth_clip(7, i, static_cast<SynthType>(t));
      const auto& v = c.roles.variant;
      const bool symmetric = v == "together" || c.type == SynthType::kDance;
      for (const auto& cap : c.captions) {
        auto l = lower(cap);
        const size_t xa = first_at(l, names(c.roles.actor)), ya = first_at(l, names(1 - c.roles.actor));
        if (!symmetric) {
          EXPECT_NE(xa, std::string::npos) << "the actor is not named: " << cap;
          EXPECT_NE(ya, std::string::npos) << "the partner is not named: " << cap;
        }
        if (v == "actor_approaches") EXPECT_LT(xa, ya) << cap;  // "{X} walks up to {Y}"
        if (v == "partner_approaches") EXPECT_LT(ya, xa) << cap;
        if (v == "actor_approaches" || v == "partner_approaches" || v == "both_approach")
          EXPECT_TRUE(l.find("walk") != std::string::npos || l.find("approach") != std::string::npos ||
                      l.find("step") != std::string::npos || l.find("come") != std::string::npos) << cap;
        if (v == "both_approach") EXPECT_NE(l.find("each other"), std::string::npos) << cap;
        if (c.type == SynthType::kWave) EXPECT_EQ(v == "partner_turns", l.find(" turn") != std::string::npos) << cap;  // not "returns"
        if (c.roles.direction >= 0) EXPECT_NE(l.find(word[c.roles.direction]), std::string::npos) << cap;
        if (c.roles.direction < 0 && (c.type == SynthType::kWalkTogether || c.type == SynthType::kFollow))
          EXPECT_NE(l.find("straight"), std::string::npos) << cap;
      }
    }
}

TEST(MotionSynth, PathRolesMatchTheMotion) {
  for (int64_t i = 0; i < 24; ++i) {
    auto c = synth_clip(31, i, i % 2 ? SynthType::kWalkTogether : SynthType::kFollow);
    auto j = c.joints.to(torch::kFloat64);
    const int a = c.roles.actor, b = 1 - a, T = static_cast<int>(j.size(0)), t = T / 2;
    auto ra = j[t][a][kPelvis], rb = j[t][b][kPelvis];
    auto across = j[t][a][kRightHip] - j[t][a][kLeftHip];  // points to the actor's right
    auto fwd = torch::stack({across[2], torch::zeros_like(across[0]), -across[0]});  // facing of the actor
    auto d = rb - ra;
    if (c.type == SynthType::kFollow) {
      EXPECT_LT((d * fwd).sum().item<double>(), 0) << "the follower walks behind";
    } else {
      double right = (d * across).sum().item<double>();
      EXPECT_EQ(right > 0 ? 0 : 1, c.roles.partner_side) << c.captions[0];
    }
    if (c.roles.direction >= 0) {  // the walking direction turns the way the caption says
      auto h0 = j[T / 4][a][kRightHip] - j[T / 4][a][kLeftHip], h1 = j[3 * T / 4][a][kRightHip] - j[3 * T / 4][a][kLeftHip];
      double turn = (h0[2] * h1[0] - h0[0] * h1[2]).item<double>();  // > 0: turned left (about +Y)
      EXPECT_EQ(turn > 0 ? 1 : 0, c.roles.direction) << c.captions[0];
    }
  }
}

}  // namespace
}  // namespace vimo::motion

// Synthetic group scenes and the group protocol's scene measures: determinism, shapes, pairs and
// contacts as scripted, the contacts found where the script puts them, bodies apart except at the
// hands, feet that do not skate, and the named errors.
#include <gtest/gtest.h>

#include "vimo/core/error.h"
#include "vimo/eval/group_protocol.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/motion/clip.h"
#include "vimo/motion/features.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth_group.h"

namespace vimo::eval {
namespace {

using motion::GroupClip;
using motion::GroupType;

const std::vector<GroupClip>& scenes() {
  static std::vector<GroupClip> v = [] {
    std::vector<GroupClip> s;
    for (int persons : {3, 4})
      for (int64_t i = 0; i < 6; ++i) s.push_back(motion::synth_group(7, i, persons));
    return s;
  }();
  return v;
}

TEST(EvalGroup, ScenesAreDeterministicWithScriptedPairsAndContacts) {
  auto a = motion::synth_group(3, 5, 3), b = motion::synth_group(3, 5, 3), c = motion::synth_group(4, 5, 3);
  EXPECT_TRUE(torch::equal(a.joints, b.joints));
  EXPECT_EQ(a.captions, b.captions);
  EXPECT_FALSE(a.joints.sizes() == c.joints.sizes() && torch::equal(a.joints, c.joints));
  for (const auto& s : scenes()) {
    const int N = s.persons;
    ASSERT_EQ(s.joints.dim(), 4);
    EXPECT_EQ(s.joints.size(1), N);
    EXPECT_GE(s.joints.size(0), motion::kMinClipFrames);
    EXPECT_LE(s.joints.size(0), motion::kMaxClipFrames);
    EXPECT_TRUE(torch::isfinite(s.joints).all().item<bool>());
    ASSERT_EQ(static_cast<int>(s.pairs.size()), N - 1);
    for (int k = 1; k < N; ++k) {
      const auto& p = s.pairs[static_cast<size_t>(k - 1)];
      EXPECT_EQ(p.other, k);
      EXPECT_EQ(p.anchor, s.type == GroupType::kGreet ? 0 : k - 1);
      EXPECT_EQ(p.captions.size(), 3u);
    }
    // A circle of N holds N pairs of hands; the greeter shakes N - 1 hands, as many as fit in the
    // 10 s a scene is cut to (both of three persons' always do).
    const int contacts = static_cast<int>(s.contacts.size());
    if (s.type == GroupType::kCircleDance) EXPECT_EQ(contacts, N) << s.id;
    else if (N == 3) EXPECT_EQ(contacts, 2) << s.id;
    else EXPECT_TRUE(contacts >= 2 && contacts <= N - 1) << s.id << ": " << contacts;
    ASSERT_EQ(s.captions.size(), 3u);
    const std::string n = N == 3 ? "three" : "four", others = N == 3 ? "two" : "three";
    for (const auto& cap : s.captions)
      EXPECT_TRUE(cap.find(s.type == GroupType::kGreet ? others : n) != std::string::npos) << cap;
    auto f = motion::group_features(s);
    EXPECT_EQ(f.size(0), s.joints.size(0) - 1);
    EXPECT_EQ(f.size(1), N);
    EXPECT_EQ(f.size(2), motion::kFeatureDim);
  }
}

TEST(EvalGroup, ScriptedContactsAreFoundNearTheirScriptedFrame) {
  for (const auto& s : scenes()) {
    auto j = motion::features_to_joints(motion::group_features(s)).to(torch::kFloat64);
    for (const auto& c : s.contacts) {
      const int64_t t = contact_onset(j, c, 0.2);
      ASSERT_GE(t, 0) << s.id << ": persons " << c.a << " and " << c.b << " never touch";
      EXPECT_LE(std::abs(t - c.frame), 30) << s.id << ": contact at " << t << ", scripted at " << c.frame;
    }
  }
  // A contact between two joints that stay apart is never found.
  const auto& s = scenes()[0];
  auto j = motion::features_to_joints(motion::group_features(s)).to(torch::kFloat64);
  EXPECT_EQ(contact_onset(j, {0, 1, motion::kLeftAnkle, motion::kHead, 0}, 0.2), -1);
  EXPECT_THROW(contact_onset(j, {0, 7, 0, 0, 0}, 0.2), Error);
}

TEST(EvalGroup, BodiesStayApartButForTheHandsAndFeetDoNotSkate) {
  for (const auto& s : scenes()) {
    auto j = motion::features_to_joints(motion::group_features(s)).to(torch::kFloat64);
    // Without the forearms (where hands shake or join), no capsule overlap at all.
    EXPECT_EQ(group_penetration(j, false), 0.0) << s.id;
    // Without the forearms and hands, no overlap at all between any two bodies.
    auto body = j.index_select(2, torch::arange(0, motion::kLeftElbow));
    int64_t overlaps = 0;
    for (int64_t a = 0; a < s.persons; ++a)
      for (int64_t b = a + 1; b < s.persons; ++b)
        overlaps += (torch::cdist(body.select(1, a), body.select(1, b)).amin({1, 2}) < 0.1).sum().item<int64_t>();
    EXPECT_EQ(overlaps, 0) << s.id << ": torsos or legs within 10 cm";
    EXPECT_LT(foot_skating_ratio(j), 0.1) << s.id;
  }
}

TEST(EvalGroup, GroupSizesOutsideTheRangeAreNamedErrors) {
  for (int n : {2, 1, motion::kMaxGroupPersons + 1}) {
    try {
      motion::synth_group(1, 0, n);
      ADD_FAILURE() << n << " persons accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--persons"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(motion::synth_group(1, 1, motion::kMaxGroupPersons));
}

}  // namespace
}  // namespace vimo::eval

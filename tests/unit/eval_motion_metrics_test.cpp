// MPJPE, PA-MPJPE, foot skating and penetration on constructed poses with hand-computed answers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/motion/skeleton.h"

using namespace vimo::eval;

namespace {

torch::Tensor pose(int64_t joints = 22) { return torch::rand({joints, 3}, torch::kFloat64); }

// A column body: joint k at height 0.05 k above (x, 0, z), so every bone is vertical.
torch::Tensor column(double x, int64_t frames = 1) {
  auto j = torch::zeros({frames, 22, 3}, torch::kFloat64);
  for (int k = 0; k < 22; ++k) j.select(1, k).select(1, 1).fill_(0.05 * k);
  j.select(2, 0).fill_(x);
  return j;
}

}  // namespace

TEST(EvalMotionMetrics, MpjpeIsTheMeanJointDistanceInMillimetres) {
  auto gt = pose().unsqueeze(0).repeat({4, 1, 1});
  auto pred = gt + torch::tensor({0.003, 0.004, 0.0}, torch::kFloat64);
  EXPECT_NEAR(mpjpe_mm(pred, gt), 5.0, 1e-9);
  EXPECT_NEAR(mpjpe_mm(gt, gt), 0.0, 1e-12);
}

TEST(EvalMotionMetrics, PaMpjpeRemovesRotationScaleAndTranslationButNotReflection) {
  torch::manual_seed(3);
  auto gt = pose().unsqueeze(0);  // [1, 22, 3]
  const double a = 1.1;
  auto rot =
      torch::tensor({std::cos(a), 0.0, std::sin(a), 0.0, 1.0, 0.0, -std::sin(a), 0.0, std::cos(a)}, torch::kFloat64)
          .view({3, 3});
  auto pred = 2.5 * gt.matmul(rot.t()) + torch::tensor({0.3, -1.0, 2.0}, torch::kFloat64);
  EXPECT_GT(mpjpe_mm(pred, gt), 100.0);
  EXPECT_NEAR(pa_mpjpe_mm(pred, gt), 0.0, 1e-9);
  auto mirrored = gt * torch::tensor({-1.0, 1.0, 1.0}, torch::kFloat64);
  EXPECT_GT(pa_mpjpe_mm(mirrored, gt), 1.0);
  auto noisy = gt + 0.01 * torch::randn_like(gt);
  EXPECT_LE(pa_mpjpe_mm(noisy, gt), mpjpe_mm(noisy, gt) + 1e-9);
}

TEST(EvalMotionMetrics, JointErrorsRejectMismatchedShapesAndNaN) {
  EXPECT_THROW(mpjpe_mm(pose(22), pose(21)), vimo::Error);
  auto bad = pose();
  bad[3][1] = std::nan("");
  EXPECT_THROW(mpjpe_mm(bad, pose()), vimo::Error);
  EXPECT_THROW(pa_mpjpe_mm(torch::zeros({2, 2, 3}), torch::zeros({2, 2, 3})), vimo::Error);
}

TEST(EvalMotionMetrics, FootSkatingCountsTransitionsWithASlidingGroundedFoot) {
  const int64_t T = 11;
  auto j = torch::zeros({T, 22, 3}, torch::kFloat64);
  j.select(1, vimo::motion::kRightFoot).select(1, 1).fill_(0.02);  // right foot planted
  for (int64_t t = 0; t < T; ++t) {
    j[t][vimo::motion::kLeftFoot][0] = 0.03 * static_cast<double>(t);  // 0.9 m/s at 30 fps
    j[t][vimo::motion::kLeftFoot][1] = t <= 5 ? 0.02 : 0.2;            // lifted from frame 6
  }
  // Transitions 0->1 .. 4->5 slide on the ground; 5->6 ends in the air; the rest are airborne.
  EXPECT_NEAR(foot_skating_ratio(j), 0.5, 1e-12);
  auto pair = torch::stack({j, torch::zeros_like(j)}, 1);  // [T, 2, 22, 3]; B stands still
  EXPECT_NEAR(foot_skating_ratio(pair), 0.25, 1e-12);
  FootSkatingOptions slow;
  slow.speed_m_s = 1.0;  // faster than the slide
  EXPECT_NEAR(foot_skating_ratio(j, slow), 0.0, 1e-12);
  EXPECT_THROW(foot_skating_ratio(j.slice(0, 0, 1)), vimo::Error);
}

TEST(EvalMotionMetrics, PenetrationIsCapsuleOverlapBetweenTheTwoBodies) {
  auto a = column(0.0, 4);
  auto b = torch::cat({column(0.08, 2), column(0.5, 2)}, 0);  // close for 2 frames, apart for 2
  const auto p = penetration(a, b);                           // radius 0.05: surfaces overlap by 0.1 - 0.08 m
  EXPECT_NEAR(p.ratio, 0.5, 1e-12);
  EXPECT_NEAR(p.depth_mm, 20.0, 1e-9);
  const auto apart = penetration(a, column(0.5, 4));
  EXPECT_EQ(apart.ratio, 0.0);
  EXPECT_EQ(apart.depth_mm, 0.0);
  EXPECT_THROW(penetration(a, column(0.0, 3)), vimo::Error);
}

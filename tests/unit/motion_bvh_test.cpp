// BVH export: matrix -> Euler against euler_to_matrix, and write -> parse -> forward kinematics round
// trips of synthetic pairs and groups (every one of the 22 joints), the file layout, import of the
// exported persons, and named errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/features.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth.h"
#include "vimo/motion/synth_group.h"

using namespace vimo::motion;
namespace fs = std::filesystem;

namespace {

const std::array<std::array<int, 3>, 6> kOrders = {{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}};

double maxdiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The 22 SMPL joints [T, 22, 3] read back from BVH text through the parser's forward kinematics.
torch::Tensor read_back(const std::string& text, const std::string& name) {
  auto b = parse_bvh_text(text, name);
  auto pos = bvh_positions(b);
  std::vector<int64_t> idx;
  for (int j = 0; j < kNumJoints; ++j) {
    int i = b.find(bvh_joint_name(j));
    EXPECT_GE(i, 0) << bvh_joint_name(j);
    idx.push_back(i);
  }
  return pos.index_select(1, torch::tensor(idx));
}

}  // namespace

TEST(MotionRotation, MatrixToEulerRoundTrip) {
  torch::manual_seed(3);
  auto angles = (torch::rand({2000, 3}, torch::kFloat64) * 2 - 1) * torch::tensor({179.9, 89.9, 179.9}, torch::kFloat64);
  auto random_m = axis_angle_to_matrix(torch::randn({2000, 3}, torch::kFloat64) * 2);
  for (const auto& order : kOrders) {
    // Angles inside the principal ranges come back as they were.
    auto back = matrix_to_euler(euler_to_matrix(angles, order), order);
    EXPECT_LT(maxdiff(back, angles), 1e-8) << order[0] << order[1] << order[2];
    // Any rotation comes back as the same matrix.
    auto e = matrix_to_euler(random_m, order);
    EXPECT_LT(maxdiff(euler_to_matrix(e, order), random_m), 1e-12);
    EXPECT_LE(e.select(1, 1).abs().max().item<double>(), 90.0 + 1e-9);
    // Gimbal lock: the middle angle at +-90 degrees, the outer angles mixed; the matrix still round trips.
    auto lock = angles.clone();
    lock.select(1, 1).copy_(torch::where(angles.select(1, 1) > 0, 90.0, -90.0));
    auto ml = euler_to_matrix(lock, order);
    EXPECT_LT(maxdiff(euler_to_matrix(matrix_to_euler(ml, order), order), ml), 1e-9);
  }
  // By hand: Rz(30) Ry(-45) Rx(60) in the BVH order.
  auto m = euler_to_matrix(torch::tensor({30.0, -45.0, 60.0}, torch::kFloat64), kBvhEulerOrder);
  EXPECT_LT(maxdiff(matrix_to_euler(m, kBvhEulerOrder), torch::tensor({30.0, -45.0, 60.0}, torch::kFloat64)), 1e-10);
  EXPECT_THROW(matrix_to_euler(m, {0, 1, 0}), vimo::Error);
}

TEST(MotionBvhExport, Layout) {
  EXPECT_EQ(bvh_joint_name(kPelvis), "Pelvis");
  EXPECT_EQ(bvh_joint_name(kLeftHip), "L_Hip");
  EXPECT_EQ(bvh_joint_name(kSpine3), "Spine3");
  auto clip = synth_clip(7, 0, SynthType::kHandshake);
  auto text = bvh_text(clip.joints.select(1, 0), 30, "a.bvh");
  auto b = parse_bvh_text(text, "a.bvh");
  ASSERT_EQ(b.joints.size(), 27u);  // 22 joints + 5 end sites (head, wrists, toes)
  int ends = 0;
  for (const auto& j : b.joints) {
    if (j.end_site) {
      ++ends;
      continue;
    }
    EXPECT_EQ(j.channels.size(), j.parent < 0 ? 6u : 3u) << j.name;
    EXPECT_EQ(j.channels.back(), 3) << j.name;  // ... Zrotation Yrotation Xrotation
  }
  EXPECT_EQ(ends, 5);
  EXPECT_EQ(b.joints[0].name, "Pelvis");
  EXPECT_EQ(b.joints[0].channels, (std::vector<int>{0, 1, 2, 5, 4, 3}));
  for (int k = 0; k < 3; ++k) EXPECT_EQ(b.joints[0].offset[static_cast<size_t>(k)], 0.0);
  EXPECT_NEAR(b.frame_time, 1.0 / 30, 1e-6);
  EXPECT_EQ(b.frames.size(0), clip.joints.size(0));
  for (int j = 1; j < kNumJoints; ++j) EXPECT_EQ(b.joints[static_cast<size_t>(b.find(bvh_joint_name(j)))].parent,
                                                 b.find(bvh_joint_name(kParents[j])));
  // The end joints (head, wrists, toes) carry no rotation: their channels are all zero.
  for (int j : {kHead, kLeftWrist, kRightWrist, kLeftFoot, kRightFoot}) {
    auto col = b.joints[static_cast<size_t>(b.find(bvh_joint_name(j)))].first_channel;
    EXPECT_EQ(b.frames.narrow(1, col, 3).abs().max().item<double>(), 0.0) << bvh_joint_name(j);
  }
}

TEST(MotionBvhExport, RoundTripSynthPairs) {
  // Synthetic bodies are rigid (constant bone lengths): every joint comes back to the written precision.
  double worst_pelvis = 0, worst_inner = 0, worst_end = 0;
  for (int type = 0; type < kNumSynthTypes; ++type) {
    auto clip = synth_clip(11, type, static_cast<SynthType>(type));
    for (int p = 0; p < 2; ++p) {
      auto j = clip.joints.select(1, p).to(torch::kFloat64);
      auto err = (read_back(bvh_text(j, 30, "p.bvh"), "p.bvh") - j).norm(2, -1);  // [T, 22] metres
      for (int k = 0; k < kNumJoints; ++k) {
        double e = err.select(1, k).max().item<double>();
        bool end = k == kHead || k == kLeftWrist || k == kRightWrist || k == kLeftFoot || k == kRightFoot;
        double& w = k == kPelvis ? worst_pelvis : end ? worst_end : worst_inner;
        w = std::max(w, e);
      }
    }
  }
  std::cout << "BVH round trip on 24 synthetic persons: pelvis " << worst_pelvis * 1e3 << " mm, other inner joints "
            << worst_inner * 1e3 << " mm, end joints " << worst_end * 1e3 << " mm\n";
  EXPECT_LT(worst_pelvis, 1e-6);
  EXPECT_LT(worst_inner, 1e-5);  // 0.01 mm
  EXPECT_LT(worst_end, 1e-5);
}

TEST(MotionBvhExport, NonRigidBonesKeepDirections) {
  // Generated motion stretches bones: the BVH holds one length per bone (the mean), so a joint is off by
  // the length changes along its chain, while the pelvis stays exact.
  auto j = synth_clip(5, 3, SynthType::kWave).joints.select(1, 0).to(torch::kFloat64);
  torch::manual_seed(0);
  auto noisy = j + torch::randn(j.sizes(), torch::kFloat64) * 0.003;
  auto err = (read_back(bvh_text(noisy, 30, "n.bvh"), "n.bvh") - noisy).norm(2, -1);
  std::cout << "BVH round trip with 3 mm joint noise: pelvis " << err.select(1, 0).max().item<double>() * 1e3
            << " mm, mean " << err.mean().item<double>() * 1e3 << " mm, max " << err.max().item<double>() * 1e3 << " mm\n";
  EXPECT_LT(err.select(1, 0).max().item<double>(), 1e-6);
  EXPECT_LT(err.max().item<double>(), 0.05);
}

TEST(MotionBvhExport, GroupFilesAndImport) {
  vimo::data::testing::TempDir tmp;
  auto g = synth_group(2, 0, GroupType::kCircleDance, 3);
  auto features = group_features(g);  // [T, 3, 262], canonical to person A
  auto joints = features_to_joints(features);
  auto paths = export_features_bvh(bvh_prefix(tmp.path.string() + "/", "scene"), features);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(paths[2], tmp.file("scene_C.bvh"));
  for (int p = 0; p < 3; ++p) {
    auto back = read_back(vimo::core::read_file(paths[static_cast<size_t>(p)]), paths[static_cast<size_t>(p)]);
    EXPECT_LT(maxdiff(back, joints.select(1, p)), 1e-5) << paths[static_cast<size_t>(p)];
  }
  // The SMPL-named files import without --map; the clip is canonical to A again (already was).
  auto clip = import_bvh(paths);
  ASSERT_EQ(clip.motion.sizes(), (std::vector<int64_t>{features.size(0) - 1, 3, kFeatureDim}));
  EXPECT_LT(maxdiff(features_to_joints(clip.motion), joints.narrow(0, 0, features.size(0) - 1)), 1e-4);
  std::vector<std::string> nine(9, paths[0]);
  try {
    import_bvh(nine);
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 to 8"), std::string::npos) << e.what();
  }
}

TEST(MotionBvhExport, NamedErrors) {
  vimo::data::testing::TempDir tmp;
  auto j = synth_clip(1, 0).joints.select(1, 0);
  EXPECT_THROW(bvh_text(j.narrow(1, 0, 21), 30, "x"), vimo::Error);
  EXPECT_THROW(bvh_text(j, 0, "x"), vimo::Error);
  auto bad = j.clone();
  bad[4][7][1] = std::numeric_limits<float>::quiet_NaN();
  try {
    write_bvh(tmp.file("nan.bvh"), bad);
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nan.bvh"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("frame 4"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.file("nan.bvh")));
  // A bad person stops the whole clip before any file is written.
  auto pair = torch::stack({j, bad}, 1);
  EXPECT_THROW(write_bvh_persons(tmp.file("pair"), pair), vimo::Error);
  EXPECT_FALSE(fs::exists(tmp.file("pair_A.bvh")));
  EXPECT_THROW(export_features_bvh(tmp.file("f"), torch::zeros({10, 2, 261})), vimo::Error);
  EXPECT_THROW(write_bvh_persons(tmp.file("many"), j.unsqueeze(1).expand({-1, 9, -1, -1})), vimo::Error);
  EXPECT_EQ(bvh_prefix("out/take.bvh", "x"), "out/take");
  EXPECT_EQ(bvh_prefix("out/take", "x"), "out/take");
}

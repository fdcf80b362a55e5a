// Readers and writers on files made here: BVH parsing on a tiny handwritten file with hand-computed
// positions, the InterHuman raw writer feeding the reader, and the clips folder format.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/clips.h"
#include "vimo/motion/features.h"
#include "vimo/motion/interhuman.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

using namespace vimo::motion;
namespace fs = std::filesystem;

namespace {

const char* kTiny = R"(HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
  JOINT Leg
  {
    OFFSET 2 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -8 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.5
1 2 3 0 0 0 0 0 0 0 0 0
0 0 0 90 0 0 0 90 0 0 0 0
0 0 0 0 0 0 90 90 0 0 0 0
)";

torch::Tensor d(std::vector<double> v) { return torch::tensor(v, torch::kFloat64).view({-1, 3}); }

}  // namespace

TEST(MotionBvh, ParsesTinyFile) {
  auto b = parse_bvh_text(kTiny, "tiny.bvh");
  ASSERT_EQ(b.joints.size(), 5u);  // Hips, Chest, Chest/end, Leg, Leg/end
  EXPECT_EQ(b.joints[2].name, "Chest/end");
  EXPECT_TRUE(b.joints[2].end_site);
  EXPECT_EQ(b.joints[3].parent, 0);
  EXPECT_EQ(b.joints[3].first_channel, 9);
  EXPECT_EQ(b.joints[1].channels, (std::vector<int>{4, 3, 5}));
  EXPECT_DOUBLE_EQ(b.frame_time, 0.5);
  ASSERT_EQ(b.frames.sizes(), (std::vector<int64_t>{3, 12}));
  auto p = bvh_positions(b);
  // Frame 0: translation only.
  EXPECT_LT((p[0] - d({1, 2, 3, 1, 12, 3, 1, 17, 3, 3, 2, 3, 3, -6, 3})).abs().max().item<double>(), 1e-9);
  // Frame 1: root Z 90 (x, y) -> (-y, x); chest X 90 turns its end (0, 5, 0) to (0, 0, 5).
  EXPECT_LT((p[1] - d({0, 0, 0, -10, 0, 0, -10, 0, 5, 0, 2, 0, 8, 2, 0})).abs().max().item<double>(), 1e-9);
  // Frame 2: chest "Yrotation Xrotation" = Ry(90) Rx(90): (0, 5, 0) -> (0, 0, 5) -> (5, 0, 0).
  EXPECT_LT((p[2][2] - d({5, 10, 0})[0]).abs().max().item<double>(), 1e-9);
}

TEST(MotionBvh, ClearErrors) {
  std::string bad = kTiny;
  bad.replace(bad.find("Yrotation Xrotation Zrotation"), 9, "Wrotation");
  try {
    parse_bvh_text(bad, "bad.bvh");
    FAIL();
  } catch (const vimo::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("bad.bvh:9"), std::string::npos) << m;
    EXPECT_NE(m.find("Wrotation"), std::string::npos) << m;
    EXPECT_NE(m.find("Chest"), std::string::npos) << m;
  }
  std::string short_motion = kTiny;
  short_motion.replace(short_motion.find("Frames: 3"), 9, "Frames: 4");
  EXPECT_THROW(parse_bvh_text(short_motion, "short.bvh"), vimo::Error);
  try {
    bvh_to_smpl_joints(parse_bvh_text(kTiny, "tiny.bvh"));
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--map"), std::string::npos);
  }
}

namespace {

// A person swaying in place at `x`, facing `yaw`: joints [T, 22, 3] and local rotations [T, 22, 3, 3].
std::pair<torch::Tensor, torch::Tensor> person(int t, double x, double yaw) {
  auto k = torch::arange(t, torch::kFloat64);
  auto aa = torch::zeros({t, kNumJoints, 3}, torch::kFloat64);
  aa.select(1, 0).select(1, 1).fill_(yaw);
  aa.select(1, kLeftShoulder).select(1, 2).copy_(-1.0 + 0.3 * torch::sin(k * 0.2));
  aa.select(1, kRightElbow).select(1, 1).copy_(0.5 * torch::sin(k * 0.1));
  aa.select(1, kSpine1).select(1, 0).copy_(0.1 * torch::sin(k * 0.05));
  auto rot = axis_angle_to_matrix(aa);
  auto root = torch::tensor({x, 0.92, 0.3}, torch::kFloat64).expand({t, 3});
  return {forward_kinematics(rot, root, rest_offsets()), rot};
}

struct TmpDir {
  std::string path = "motion_test_tmp_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
  // Not fs::remove_all: libtorch exports a broken copy of that symbol that segfaults when called.
  TmpDir() { clear(); }
  ~TmpDir() { clear(); }
  void clear() const { (void)std::system(("rm -rf '" + path + "'").c_str()); }
};

}  // namespace

TEST(MotionInterHuman, WriterFeedsReader) {
  TmpDir tmp;
  auto [ja, ra] = person(40, 0.0, 0.4);
  auto [jb, rb] = person(40, 1.5, -2.6);
  write_interhuman_clip(tmp.path, "0001", ja, jb, ra, rb, {"two people sway.", "they stand apart."});
  auto sa = person(10, 0.0, 0.0).first;
  write_interhuman_clip(tmp.path, "0002", sa, sa);  // too short: 9 feature frames
  write_interhuman_split(tmp.path, "train", {"0001", "0002"});
  auto raw = vimo::core::load_npy(tmp.path + "/motions_processed/person1/0001.npy");
  ASSERT_EQ(raw.sizes(), (std::vector<int64_t>{40, 492}));
  EXPECT_EQ(raw.scalar_type(), torch::kFloat32);
  // Z up on disk: the raw z of the head is the Y-up height.
  EXPECT_NEAR(raw[0][kHead * 3 + 2].item<float>(), ja[0][kHead][1].item<double>(), 1e-6);
  ReadStats stats;
  auto clips = read_interhuman(tmp.path, "train", {}, &stats);
  ASSERT_EQ(clips.size(), 1u);
  EXPECT_EQ(stats.too_short, 1);
  EXPECT_EQ(clips[0].id, "0001");
  EXPECT_EQ(clips[0].captions, (std::vector<std::string>{"two people sway.", "they stand apart."}));
  auto want = joints_to_features({ja, jb}, {ra, rb});
  ASSERT_EQ(clips[0].motion.sizes(), want.sizes());
  EXPECT_LT((clips[0].motion - want).abs().max().item<float>(), 1e-5);
  // Without rotations the writer stores inverse-kinematics rotations; FK of them rebuilds person A.
  write_interhuman_clip(tmp.path, "0003", ja, jb);
  write_interhuman_split(tmp.path, "val", {"0003"});
  auto ik = read_interhuman(tmp.path, "val")[0].motion;
  EXPECT_LT((features_to_joints(ik) - features_to_joints(want)).abs().max().item<float>(), 1e-5);
  auto r = features_to_rotations(ik.select(1, 0)).to(torch::kFloat64);
  auto canon = features_to_joints(ik.select(1, 0)).to(torch::kFloat64);
  auto local = torch::cat({inverse_kinematics(canon).narrow(1, 0, 1), r}, 1);
  auto fk = forward_kinematics(local, canon.select(1, 0), rest_offsets());
  EXPECT_LT((fk - canon).abs().max().item<double>(), 1e-4);
}

TEST(MotionInterHuman, MissingFilesAndSplits) {
  TmpDir tmp;
  auto [ja, ra] = person(30, 0.0, 0.0);
  write_interhuman_clip(tmp.path, "a", ja, ja);
  write_interhuman_clip(tmp.path, "b", ja, ja);
  fs::remove(tmp.path + "/annots/b.txt");
  write_interhuman_split(tmp.path, "train", {"a", "b"});
  ReadStats stats;
  auto clips = read_interhuman(tmp.path, "train", {}, &stats);
  EXPECT_EQ(clips.size(), 1u);
  ASSERT_EQ(stats.missing_ids.size(), 1u);
  EXPECT_NE(stats.missing_ids[0].find("annots/b.txt"), std::string::npos);
  ReadOptions strict;
  strict.strict = true;
  EXPECT_THROW(read_interhuman(tmp.path, "train", strict), vimo::Error);
  try {
    read_interhuman(tmp.path, "test");
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("whole test split is missing"), std::string::npos);
  }
  EXPECT_THROW(read_interhuman(tmp.path + "/nowhere", "train"), vimo::Error);
}

TEST(MotionClips, FolderRoundTrip) {
  TmpDir tmp;
  auto [ja, ra] = person(50, 0.0, 0.0);
  Clip c{"pair_07", joints_to_features({ja, ja}), {"caption one", "caption two"}};
  write_clip(tmp.path, c);
  Clip s{"single", joints_to_features({ja}).narrow(0, 0, 10), {}};
  write_clip(tmp.path, s);
  ReadStats stats;
  auto clips = read_clips(tmp.path, {}, &stats);
  ASSERT_EQ(clips.size(), 1u);
  EXPECT_EQ(stats.too_short, 1);
  EXPECT_EQ(clips[0].id, "pair_07");
  EXPECT_EQ(clips[0].captions, c.captions);
  EXPECT_TRUE(torch::equal(clips[0].motion, c.motion));
  auto bad = c.motion.clone();
  bad[3][1][5] = std::numeric_limits<float>::infinity();
  vimo::core::save_npy(tmp.path + "/broken.npy", bad);
  try {
    read_clips(tmp.path);
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.npy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("frame 3"), std::string::npos);
  }
}

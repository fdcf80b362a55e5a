// Rotations, kinematics and the 262-d features against hand-computed values and invariants.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/motion/features.h"
#include "vimo/motion/foot_cleanup.h"
#include "vimo/motion/synth.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

using namespace vimo::motion;

namespace {

torch::Tensor d(std::initializer_list<double> v) { return torch::tensor(std::vector<double>(v), torch::kFloat64); }

// Rest-pose joints [22, 3] summed from the offsets table by hand (pelvis at its rest height).
torch::Tensor rest_joints() {
  auto j = torch::zeros({kNumJoints, 3}, torch::kFloat64);
  for (int k = 0; k < kNumJoints; ++k) {
    auto off = d({kRestOffsets[k][0], kRestOffsets[k][1], kRestOffsets[k][2]});
    j[k] = kParents[k] < 0 ? off : j[kParents[k]] + off;
  }
  return j;
}

// Yaw `a` about +Y then translate: [T, 22, 3].
torch::Tensor move(const torch::Tensor& j, double a, double tx, double ty, double tz) {
  auto r = d({std::cos(a), 0, std::sin(a), 0, 1, 0, -std::sin(a), 0, std::cos(a)}).view({3, 3});
  return j.matmul(r.t()) + d({tx, ty, tz});
}

// A walking-like clip: the rest pose stepping forward along +Z, knees and arms swinging.
torch::Tensor walk(int t, double speed) {
  auto base = rest_joints();
  std::vector<torch::Tensor> frames;
  for (int i = 0; i < t; ++i) {
    auto aa = torch::zeros({kNumJoints, 3}, torch::kFloat64);
    double ph = i * 0.3;
    aa[kLeftHip][0] = 0.4 * std::sin(ph);
    aa[kRightHip][0] = -0.4 * std::sin(ph);
    aa[kLeftKnee][0] = 0.3 * (1 + std::sin(ph));
    aa[kLeftShoulder][2] = -1.2;
    aa[kRightShoulder][2] = 1.2 + 0.2 * std::cos(ph);
    aa[kSpine2][1] = 0.1 * std::sin(ph);
    auto root = base[0] + d({0, 0.01 * std::sin(ph), speed * i});
    frames.push_back(forward_kinematics(axis_angle_to_matrix(aa), root, rest_offsets()));
  }
  return torch::stack(frames);
}

double maxdiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

TEST(MotionRotation, HandValues) {
  auto m = axis_angle_to_matrix(d({0, 0, M_PI / 2}));
  EXPECT_LT(maxdiff(m, d({0, -1, 0, 1, 0, 0, 0, 0, 1}).view({3, 3})), 1e-12);
  // (w, x, y, z) = (cos 60deg, sin 60deg, 0, 0): 120 degrees about X.
  auto q = quat_to_matrix(d({0.5, std::sqrt(3.0) / 2, 0, 0}));
  EXPECT_LT(maxdiff(q, axis_angle_to_matrix(d({2 * M_PI / 3, 0, 0}))), 1e-12);
  // 6D holds the first two rows.
  EXPECT_LT(maxdiff(matrix_to_6d(m), d({0, -1, 0, 1, 0, 0})), 1e-12);
  // BVH channels "Zrotation Xrotation Yrotation": R = Rz Rx Ry; Rx(90) turns +Y to +Z, Rz keeps +Z.
  auto e = euler_to_matrix(d({90, 90, 0}), {2, 0, 1});
  EXPECT_LT(maxdiff(e.matmul(d({0, 1, 0})), d({0, 0, 1})), 1e-12);
  EXPECT_LT(maxdiff(rotation_about_y(torch::tensor(M_PI / 2, torch::kFloat64)).matmul(d({1, 0, 0})), d({0, 0, -1})), 1e-12);
}

TEST(MotionRotation, RoundTrips) {
  torch::manual_seed(0);
  auto aa = torch::randn({500, 3}, torch::kFloat64) * 1.2;
  aa[0] = d({M_PI - 1e-7, 0, 0});  // near pi exercises the other quaternion branches
  aa[1] = d({0, 0, 0});
  aa[2] = d({0, -M_PI + 1e-6, 0});
  auto m = axis_angle_to_matrix(aa);
  EXPECT_LT(maxdiff(quat_to_matrix(matrix_to_quat(m)), m), 1e-9);
  EXPECT_LT(maxdiff(quat_to_matrix(axis_angle_to_quat(aa)), m), 1e-9);
  EXPECT_LT(maxdiff(axis_angle_to_matrix(matrix_to_axis_angle(m)), m), 1e-6);
  EXPECT_LT(maxdiff(sixd_to_matrix(matrix_to_6d(m)), m), 1e-12);
  auto q = matrix_to_quat(m), v = torch::randn({500, 3}, torch::kFloat64);
  EXPECT_LT(maxdiff(quat_rotate(q, v), m.matmul(v.unsqueeze(-1)).squeeze(-1)), 1e-9);
  EXPECT_LT(maxdiff(quat_to_matrix(quat_mul(q, quat_conj(q))), torch::eye(3, torch::kFloat64).expand({500, 3, 3})), 1e-9);
  auto u = torch::randn({500, 3}, torch::kFloat64), w = torch::randn({500, 3}, torch::kFloat64);
  w[0] = -u[0];
  auto r = rotation_between(u, w);
  auto got = r.matmul(u.unsqueeze(-1)).squeeze(-1);
  EXPECT_LT(maxdiff(got / got.norm(2, -1, true), w / w.norm(2, -1, true)), 1e-9);
  EXPECT_LT(maxdiff(torch::det(r), torch::ones({500}, torch::kFloat64)), 1e-9);
}

TEST(MotionKinematics, ForwardByHand) {
  auto rot = torch::eye(3, torch::kFloat64).expand({kNumJoints, 3, 3}).clone();
  auto j = forward_kinematics(rot, d({0, 0.92, 0}), rest_offsets());
  EXPECT_LT(maxdiff(j, rest_joints()), 1e-12);
  // Lift the left thigh forward by 90 degrees about +X: the knee moves from below the hip to
  // in front of it (-y offset -> +z), the ankle follows with the knee bone's offset turned alike.
  rot[kLeftHip] = axis_angle_to_matrix(d({-M_PI / 2, 0, 0}));
  j = forward_kinematics(rot, d({0, 0.92, 0}), rest_offsets());
  auto hip = rest_joints()[kLeftHip];
  auto o = kRestOffsets[kLeftKnee];
  EXPECT_LT(maxdiff(j[kLeftKnee], hip + d({o[0], o[2], -o[1]})), 1e-12);
  EXPECT_LT(maxdiff(j[kRightKnee], rest_joints()[kRightKnee]), 1e-12);
}

TEST(MotionKinematics, InverseReproducesPositions) {
  torch::manual_seed(1);
  auto rot = axis_angle_to_matrix(torch::randn({8, kNumJoints, 3}, torch::kFloat64) * 0.5);
  auto root = torch::randn({8, 3}, torch::kFloat64);
  auto j = forward_kinematics(rot, root, rest_offsets());
  auto local = inverse_kinematics(j);
  auto back = forward_kinematics(local, root, rest_offsets());
  EXPECT_LT(maxdiff(back, j), 1e-9);
  // The pelvis (several children) is recovered exactly, twist included.
  EXPECT_LT(maxdiff(local.select(1, kPelvis), rot.select(1, kPelvis)), 1e-9);
}

TEST(MotionFeatures, LayoutByHand) {
  // A person in the rest pose facing +X, standing at (3, 0.5, -2), stepping 0.01 m per frame forward.
  auto base = move(rest_joints().unsqueeze(0), M_PI / 2, 3, 0.5, -2);
  auto clip = torch::cat({base, base + d({0.01, 0, 0}), base + d({0.02, 0, 0})});  // [3, 22, 3]
  auto f = joints_to_features({clip});
  ASSERT_EQ(f.sizes(), (std::vector<int64_t>{2, 1, 262}));
  auto rest = rest_joints();
  double floor = rest.select(1, 1).min().item<double>();
  // The template's hips are not exactly level front to back, so its own facing is turned by a small
  // angle delta from +Z; canonical frame k is the rest pose stepped 0.01 k forward, turned by delta.
  double ax = (rest[kRightHip][0] - rest[kLeftHip][0]).item<double>();
  double az = (rest[kRightHip][2] - rest[kLeftHip][2]).item<double>();
  double delta = std::atan2(-az, -ax);  // forward = (a_z, 0, -a_x); yaw = atan2(-f_x, f_z)
  for (int k = 0; k < 2; ++k) {
    auto shifted = rest - d({rest[0][0].item<double>(), floor, rest[0][2].item<double>()}) + d({0, 0, 0.01 * k});
    auto expect = move(shifted, delta, 0, 0, 0);
    EXPECT_LT(maxdiff(f[k][0].narrow(0, 0, 66).view({22, 3}), expect), 1e-6) << "frame " << k;
    EXPECT_LT(maxdiff(f[k][0].narrow(0, 66, 66).view({22, 3}), move(d({0, 0, 0.01}).view({1, 3}), delta, 0, 0, 0).expand({22, 3})), 1e-6);
  }
  // Rest pose: every local rotation is the identity, 6D = (1, 0, 0, 0, 1, 0).
  EXPECT_LT(maxdiff(f[0][0].narrow(0, 132, 126).view({21, 6}), d({1, 0, 0, 0, 1, 0}).expand({21, 6})), 1e-6);
  // Contacts: 0.01^2 < 0.001 so only the heights decide: ankles within 0.12 m, toes within 0.05 m.
  for (int c = 0; c < 4; ++c) {
    double h = rest[kFootJoints[c]][1].item<double>() - floor;
    double lim = c % 2 ? 0.05 : 0.12;
    EXPECT_EQ(f[0][0][258 + c].item<float>(), h < lim ? 1.f : 0.f) << c;
  }
}

TEST(MotionFeatures, CanonicalInvariants) {
  auto a = walk(40, 0.02), b = move(walk(40, 0.015), 2.5, 0.3, 0, 1.6);
  auto f = joints_to_features({a, b});
  // The same pair anywhere on the floor, turned and lifted, gives the same features.
  auto g = joints_to_features({move(a, -1.1, 5, 0.2, 7), move(b, -1.1, 5, 0.2, 7)});
  EXPECT_LT(maxdiff(f, g), 1e-5);
  auto j = features_to_joints(f);  // [T-1, 2, 22, 3]
  EXPECT_LT(std::abs(j[0][0][0][0].item<float>()), 1e-6);
  EXPECT_LT(std::abs(j[0][0][0][2].item<float>()), 1e-6);
  auto across = j[0][0][kRightHip] - j[0][0][kLeftHip];  // facing +Z: right hip towards -X
  EXPECT_LT(std::abs(across[2].item<float>()), 1e-6);
  EXPECT_LT(across[0].item<float>(), 0);
  EXPECT_NEAR(j.select(1, 0).select(-1, 1).min().item<float>(), 0, 1e-6);
  // The pair keeps its relation: distances between A's and B's joints are unchanged.
  auto da = torch::cdist(a.narrow(0, 0, 39).to(torch::kFloat32), b.narrow(0, 0, 39).to(torch::kFloat32));
  auto db = torch::cdist(j.select(1, 0), j.select(1, 1));
  EXPECT_LT(maxdiff(da, db), 1e-4);
  // Z-up input gives the same result.
  FeatureOptions z;
  z.up = 'z';
  EXPECT_LT(maxdiff(joints_to_features({y_up_to_z_up(a), y_up_to_z_up(b)}, {}, z), f), 1e-5);
}

TEST(MotionFeatures, RoundTripIsRigid) {
  auto a = move(walk(60, 0.03), 0.7, -2, 0.1, 4), b = move(walk(60, 0.02), 3.9, 1, 0.1, 5);
  auto j = features_to_joints(joints_to_features({a, b}));
  for (int p = 0; p < 2; ++p) {
    auto src = (p ? b : a).narrow(0, 0, 59).reshape({-1, 3});
    auto dst = j.select(1, p).to(torch::kFloat64).reshape({-1, 3});
    // Fit the rigid transform by Procrustes; the residual must be float error.
    auto ms = src.mean(0), md = dst.mean(0);
    auto h = (dst - md).t().matmul(src - ms);
    auto [u, s, vh] = torch::linalg_svd(h, false);
    auto r = u.matmul(vh);
    auto fit = (src - ms).matmul(r.t()) + md;
    EXPECT_LT(maxdiff(fit, dst), 1e-5) << "person " << p;
    EXPECT_NEAR(torch::det(r).item<double>(), 1.0, 1e-9);
    EXPECT_NEAR(r[1][1].item<double>(), 1.0, 1e-9);  // a turn about +Y only
  }
  // Rotations are recovered by inverse kinematics: FK from them rebuilds the canonical joints.
  auto f = joints_to_features({a});
  auto rot = torch::cat({torch::eye(3).expand({59, 1, 3, 3}), features_to_rotations(f.select(1, 0))}, 1);
  auto canon = features_to_joints(f.select(1, 0));
  auto pelvis_rot = inverse_kinematics(canon).select(1, 0).to(torch::kFloat32);
  rot.select(1, 0).copy_(pelvis_rot);
  auto fk = forward_kinematics(rot, canon.select(1, 0), body_offsets(a).to(torch::kFloat32));
  EXPECT_LT(maxdiff(fk, canon), 1e-3);
}

TEST(MotionFeatures, FootContacts) {
  // Left toe planted, right toe swinging high and fast, ankles at 0.1 m (in) and 0.13 m (out).
  auto c = torch::zeros({4, kNumJoints, 3}, torch::kFloat64);
  c.select(1, kLeftAnkle).select(1, 1).fill_(0.10);
  c.select(1, kRightAnkle).select(1, 1).fill_(0.13);
  c.select(1, kLeftFoot).select(1, 1).fill_(0.02);
  for (int t = 0; t < 4; ++t) {
    c[t][kRightFoot][1] = 0.01;
    c[t][kRightFoot][2] = 0.04 * t;  // 0.04^2 = 0.0016 > 0.001: moving
    c[t][kLeftAnkle][0] = 0.03 * t;  // 0.0009 < 0.001: still counts as planted
  }
  auto k = foot_contacts(c);
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_LT(maxdiff(k, d({1, 1, 0, 0}).expand({3, 4})), 1e-12);
}

TEST(MotionFeatures, BadInput) {
  auto a = walk(20, 0.02);
  auto nan = a.clone();
  nan[7][3][1] = std::nan("");
  FeatureOptions o;
  o.name = "clip_0042";
  try {
    joints_to_features({nan}, {}, o);
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("clip_0042"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("frame 7"), std::string::npos);
  }
  try {
    joints_to_features({a, a.narrow(0, 0, 18)}, {}, o);
    FAIL();
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("different lengths"), std::string::npos);
  }
  EXPECT_THROW(joints_to_features({a.narrow(1, 0, 21)}), vimo::Error);
}

TEST(MotionFeatures, ResampleAndGivenRotations) {
  auto a = walk(61, 0.02);
  FeatureOptions o;
  o.fps = 60;
  auto f = joints_to_features({a}, {}, o);
  EXPECT_EQ(f.size(0), 30);  // 61 frames at 60 fps = 1 s = 31 frames at 30 fps
  // 60 -> 30 fps keeps every other frame exactly.
  EXPECT_LT(maxdiff(f, joints_to_features({a.slice(0, 0, 61, 2)})), 1e-5);
  auto rot = axis_angle_to_matrix(torch::randn({61, kNumJoints, 3}, torch::kFloat64) * 0.3);
  auto g = joints_to_features({a}, {rot});
  EXPECT_LT(maxdiff(features_to_rotations(g.select(1, 0)), rot.narrow(0, 0, 60).narrow(1, 1, 21)), 1e-6);
}

// Retiming features equals computing them from the skeleton taken at another rate: positions and
// velocities of the same joints, rotations (interpolated 6D here, inverse kinematics in the reference)
// close, foot contacts nearly all the same.
TEST(MotionFeatures, RetimeMatchesTheRetimedSkeleton) {
  auto a = walk(91, 0.02), b = move(walk(91, 0.015), 2.5, 0.8, 0.0, 1.2);
  auto f = joints_to_features({a, b});  // [90, 2, 262]
  for (double factor : {1.5, 2.0 / 3.0}) {
    FeatureOptions o;
    o.fps = kFps / factor;
    auto ref = joints_to_features({a, b}, {}, o), got = retime_features(f, factor);
    ASSERT_EQ(got.sizes(), ref.sizes()) << factor;
    EXPECT_NEAR(static_cast<double>(got.size(0)), 90 * factor, 1.0);
    EXPECT_LT(maxdiff(got.narrow(-1, kPosChannels, 66), ref.narrow(-1, kPosChannels, 66)), 1e-5) << factor;
    EXPECT_LT(maxdiff(got.narrow(-1, kVelChannels, 66), ref.narrow(-1, kVelChannels, 66)), 1e-5) << factor;
    EXPECT_LT(maxdiff(got.narrow(-1, kRotChannels, 126), ref.narrow(-1, kRotChannels, 126)), 0.05) << factor;
    auto same = got.narrow(-1, kContactChannels, 4).eq(ref.narrow(-1, kContactChannels, 4)).to(torch::kFloat64).mean();
    EXPECT_GT(same.item<double>(), 0.97) << factor;
  }
  // Velocities follow the rate: half as fast per frame when played twice as slow.
  auto slow = retime_features(f, 2.0);
  const double v0 = f.narrow(-1, kVelChannels, 66).abs().mean().item<double>();
  const double v1 = slow.narrow(-1, kVelChannels, 66).abs().mean().item<double>();
  EXPECT_NEAR(v1 / v0, 0.5, 0.02);
  EXPECT_THROW(retime_features(f, 0.0), vimo::Error);
  EXPECT_THROW(retime_features(f.select(1, 0), 1.5), vimo::Error);
}

// A synthetic pair whose person A slides over the floor for 20 frames (0.75 m/s, every joint): the
// cleanup holds the planted feet, keeps the leg's bone lengths and touches nothing but knees, ankles
// and toes (positions and their velocities).
TEST(MotionFootCleanup, HoldsPlantedFeetAndKeepsBoneLengths) {
  const auto clip = synth_clip(3, 0);
  auto f = joints_to_features({clip.joints.select(1, 0), clip.joints.select(1, 1)}).to(torch::kFloat64);  // [T, 2, 262]
  const int64_t T = f.size(0);
  ASSERT_GT(T, 60);
  auto slid = f.clone();
  for (int64_t t = 20; t < T; ++t) {
    auto pos = slid[t][0].narrow(0, kPosChannels, 66).view({22, 3});
    pos.select(1, 0).add_(0.025 * static_cast<double>(std::min<int64_t>(t, 40) - 20));
  }
  auto skating = [](const torch::Tensor& x) { return vimo::eval::foot_skating_ratio(features_to_joints(x.select(1, 0))); };
  const double gt = skating(f), before = skating(slid);
  ASSERT_GT(before, gt + 0.05) << "the slide must make person A skate";
  FootCleanupStats st;
  auto out = clean_foot_contacts(slid, {}, &st);
  const double after = skating(out);
  EXPECT_GT(st.spans, 0);
  EXPECT_LT(st.unreachable, 2 * T);  // the 0.5 m slide puts some held feet out of reach: moved to the limit
  EXPECT_LE(after, gt + 0.01) << "before " << before << ", ground truth " << gt;
  // Bone lengths of both legs per frame, the hip fixed.
  auto j0 = features_to_joints(slid), j1 = features_to_joints(out);  // [T, 2, 22, 3]
  for (auto [a, b] : {std::pair{kLeftHip, kLeftKnee}, {kLeftKnee, kLeftAnkle}, {kLeftAnkle, kLeftFoot},
                      {kRightHip, kRightKnee}, {kRightKnee, kRightAnkle}, {kRightAnkle, kRightFoot}}) {
    auto l0 = (j0.select(2, a) - j0.select(2, b)).norm(2, -1), l1 = (j1.select(2, a) - j1.select(2, b)).norm(2, -1);
    EXPECT_LT((l0 - l1).abs().max().item<double>(), 1e-9) << "bone " << a << "-" << b;
  }
  // Everything but the six leg joints' positions and velocities is as given.
  auto same = torch::ones({kFeatureDim}, torch::kBool);
  for (int j : {kLeftKnee, kLeftAnkle, kLeftFoot, kRightKnee, kRightAnkle, kRightFoot})
    for (int c = 0; c < 3; ++c) same[kPosChannels + 3 * j + c] = false, same[kVelChannels + 3 * j + c] = false;
  auto keep = same.nonzero().squeeze(1);
  EXPECT_TRUE(torch::equal(out.index_select(2, keep), slid.index_select(2, keep)));
  // The velocities of moved joints are "next frame minus this frame" again.
  for (int j : {kLeftKnee, kLeftAnkle, kLeftFoot, kRightKnee, kRightAnkle, kRightFoot}) {
    auto p1 = j1.select(2, j), p0 = j0.select(2, j);                            // [T, 2, 3]
    auto moved = (p1 - p0).abs().amax(-1) > 0;                                   // [T, 2]
    auto either = moved.narrow(0, 0, T - 1) | moved.narrow(0, 1, T - 1);       // [T-1, 2]
    auto v = out.narrow(2, kVelChannels + 3 * j, 3).narrow(0, 0, T - 1);
    auto resid = (p1.narrow(0, 1, T - 1) - p1.narrow(0, 0, T - 1) - v).abs().amax(-1);
    EXPECT_LT(resid.masked_select(either).max().item<double>(), 1e-9) << "joint " << j;
  }
  // [T, 262] works as one person; bad input is named.
  EXPECT_TRUE(torch::allclose(clean_foot_contacts(slid.select(1, 0)), out.select(1, 0)));
  auto nan = slid.clone();
  nan[5][1][3] = std::nan("");
  EXPECT_THROW(clean_foot_contacts(nan), vimo::Error);
  EXPECT_THROW(clean_foot_contacts(torch::zeros({4, 2, 261})), vimo::Error);
}

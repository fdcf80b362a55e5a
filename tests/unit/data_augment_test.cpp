// Mirror and person-swap augmentation checked against features built by hand from joints and
// rotation matrices (mirror: X negated, left/right joints exchanged, R -> M R M).
#include <gtest/gtest.h>

#include "vimo/core/error.h"
#include "vimo/data/augment.h"

namespace vimo::data {
namespace {

// SMPL's left/right partners, written out independently of the library's table.
const std::vector<std::pair<int, int>> kPairs = {{1, 2},   {4, 5},   {7, 8},   {10, 11},
                                                 {13, 14}, {16, 17}, {18, 19}, {20, 21}};
std::vector<int64_t> mirror_order() {
  std::vector<int64_t> m(22);
  for (int j = 0; j < 22; ++j) m[j] = j;
  for (auto [l, r] : kPairs) m[l] = r, m[r] = l;
  return m;
}

// Random proper rotations [N, 3, 3] (QR of Gaussian matrices, sign-fixed).
torch::Tensor random_rotations(int64_t n) {
  auto [q, r] = torch::linalg_qr(torch::randn({n, 3, 3}, torch::kDouble));
  q = q * torch::sign(torch::diagonal(r, 0, -2, -1)).unsqueeze(-2);
  auto det = torch::linalg_det(q).view({n, 1, 1});
  return q * torch::cat({det, torch::ones({n, 1, 2}, torch::kDouble)}, 2).view({n, 1, 3});
}

// Features from joints [T+1, P, 22, 3], rotations [T, P, 21, 3, 3] and contacts [T, P, 4]:
// positions, next-minus-current velocities, 6D = first two columns, contacts.
torch::Tensor features(const torch::Tensor& J, const torch::Tensor& R, const torch::Tensor& C) {
  const int64_t T = R.size(0), P = R.size(1);
  auto pos = J.narrow(0, 0, T).reshape({T, P, 66});
  auto vel = (J.narrow(0, 1, T) - J.narrow(0, 0, T)).reshape({T, P, 66});
  auto six = torch::cat({R.select(-1, 0), R.select(-1, 1)}, -1).reshape({T, P, 126});
  return torch::cat({pos, vel, six, C}, -1).to(torch::kFloat32);
}

TEST(DataAugment, MirrorMatchesHandBuiltMirror) {
  torch::manual_seed(7);
  const int64_t T = 5, P = 2;
  auto J = torch::randn({T + 1, P, 22, 3}, torch::kDouble);
  auto R = random_rotations(T * P * 21).view({T, P, 21, 3, 3});
  auto C = (torch::rand({T, P, 4}) > 0.5).to(torch::kDouble);
  auto x = features(J, R, C);

  const auto m = torch::tensor(mirror_order());
  auto M = torch::diag(torch::tensor({-1.0, 1.0, 1.0}, torch::kDouble));
  auto Jm = J.index_select(2, m) * torch::tensor({-1.0, 1.0, 1.0}, torch::kDouble);
  auto rot_m = (m.narrow(0, 1, 21) - 1);  // rotation slots hold joints 1..21
  auto Rm = torch::matmul(torch::matmul(M, R.index_select(2, rot_m)), M);
  auto Cm = C.index_select(2, torch::tensor({2, 3, 0, 1}, torch::kLong));
  auto want = features(Jm, Rm, Cm);

  auto got = mirror_features(x);
  EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-6)) << (got - want).abs().max();
  // Joints recovered from the mirrored features are the X-negated, left/right-exchanged joints.
  auto joints = got.narrow(-1, 0, 66).reshape({T, P, 22, 3});
  EXPECT_TRUE(torch::allclose(joints, Jm.narrow(0, 0, T).to(torch::kFloat32), 1e-6, 1e-6));
  // Mirrored rotations are still rotations, and mirroring twice is the identity.
  EXPECT_TRUE(torch::equal(mirror_features(got), x));
  // Canonical facing is kept: left hip at +X stays at +X after the exchange.
  EXPECT_TRUE(torch::allclose(joints.select(2, 1).select(-1, 0),
                              -J.narrow(0, 0, T).select(2, 2).select(-1, 0).to(torch::kFloat32)));
}

TEST(DataAugment, MirrorCaptionWords) {
  EXPECT_EQ(mirror_caption("The person on the left raises his Right hand and turns clockwise."),
            "The person on the right raises his Left hand and turns counterclockwise.");
  EXPECT_EQ(mirror_caption("LEFT then right-handed, counter-clockwise; leftover stays"),
            "RIGHT then left-handed, clockwise; leftover stays");
  EXPECT_EQ(mirror_caption("steps leftwards, then Anticlockwise"), "steps rightwards, then Clockwise");
  EXPECT_EQ(mirror_caption("no sides here"), "no sides here");
}

TEST(DataAugment, MirrorClipKeepsMotionAndTextTogether) {
  motion::Clip c{"x", torch::randn({20, 2, 262}), {"one waves the left hand", "the other turns clockwise"}};
  auto m = mirror_clip(c);
  EXPECT_EQ(m.id, "x#mirror");
  EXPECT_EQ(m.captions, (std::vector<std::string>{"one waves the right hand", "the other turns counterclockwise"}));
  EXPECT_TRUE(torch::equal(m.motion, mirror_features(c.motion)));
}

// Joints of a body whose left hip/shoulder sit towards its left: facing `yaw` (radians about +Y,
// 0 = +Z) at root (x, z).
torch::Tensor posed_joints(double yaw, double x, double z) {
  auto j = torch::randn({22, 3}, torch::kDouble) * 0.05;
  j[0] = torch::tensor({0.0, 0.9, 0.0}, torch::kDouble);
  j[1] = torch::tensor({0.1, 0.85, 0.0}, torch::kDouble);    // l_hip: +X when facing +Z
  j[2] = torch::tensor({-0.1, 0.85, 0.0}, torch::kDouble);   // r_hip
  j[16] = torch::tensor({0.18, 1.4, 0.0}, torch::kDouble);   // l_shoulder
  j[17] = torch::tensor({-0.18, 1.4, 0.0}, torch::kDouble);  // r_shoulder
  const double c = std::cos(yaw), s = std::sin(yaw);
  auto rot = torch::tensor({c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c}, torch::kDouble).view({3, 3});
  return torch::matmul(j, rot.t()) + torch::tensor({x, 0.0, z}, torch::kDouble);
}

TEST(DataAugment, SwapPersonsRecanonicalizes) {
  torch::manual_seed(11);
  const int64_t T = 4;
  // A faces +Z at the origin; B stands 1.5 m ahead, facing back (-Z), drifting along X.
  std::vector<torch::Tensor> frames;
  for (int64_t t = 0; t <= T; ++t)
    frames.push_back(torch::stack({posed_joints(0, 0, 0), posed_joints(M_PI, 0.02 * t, 1.5)}));
  auto J = torch::stack(frames);  // [T+1, 2, 22, 3]
  auto R = random_rotations(T * 2 * 21).view({T, 2, 21, 3, 3});
  auto C = torch::zeros({T, 2, 4}, torch::kDouble);
  auto x = features(J, R, C);
  auto y = swap_persons(x);
  // Expected: rotate the world by pi about Y around B's root (0, 1.5): (x, z) -> (-x, 1.5 - z).
  auto Jw = J.flip(1).clone();
  auto jx = Jw.select(-1, 0).clone(), jz = Jw.select(-1, 2).clone();
  Jw.select(-1, 0).copy_(-jx);
  Jw.select(-1, 2).copy_(1.5 - jz);
  auto want = features(Jw, R.flip(1), C);
  EXPECT_TRUE(torch::allclose(y, want, 1e-4, 1e-4)) << (y - want).abs().max();
  // The new first person's root starts at the origin.
  EXPECT_NEAR(y[0][0][0].item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(y[0][0][2].item<float>(), 0.f, 1e-5);
  EXPECT_THROW(swap_persons(torch::zeros({4, 1, 262})), Error);
}

TEST(DataAugment, PlanarTransformTurnsAboutAPointAndInverts) {
  torch::manual_seed(12);
  const int64_t T = 3;
  std::vector<torch::Tensor> frames;
  for (int64_t t = 0; t <= T; ++t)
    frames.push_back(torch::stack({posed_joints(0, 0, 0), posed_joints(M_PI, 0.3, 1.5 + 0.01 * t), posed_joints(M_PI / 2, -1, 1)}));
  auto J = torch::stack(frames);  // [T+1, 3, 22, 3]
  auto R = random_rotations(T * 3 * 21).view({T, 3, 21, 3, 3});
  auto C = torch::randint(0, 2, {T, 3, 4}, torch::kDouble);
  auto x = features(J, R, C);
  // A quarter turn about (x, z) = (1, 2), written out: x' = -(z - 2) + 1, z' = (x - 1) + 2.
  auto y = apply_transform(x, PlanarTransform::rotation_about(M_PI / 2, 1, 2));
  auto Jw = J.clone();
  Jw.select(-1, 0).copy_(-(J.select(-1, 2) - 2) + 1);
  Jw.select(-1, 2).copy_(J.select(-1, 0) - 1 + 2);
  auto want = features(Jw, R, C);
  EXPECT_TRUE(torch::allclose(y, want, 1e-5, 1e-5)) << (y - want).abs().max();
  auto back = apply_transform(y, PlanarTransform::rotation_about(M_PI / 2, 1, 2).inverse());
  EXPECT_TRUE(torch::allclose(back, x, 1e-5, 1e-5)) << (back - x).abs().max();
  // Person 2 (the third) faces +X at (-1, 1): its canonical move puts its root at the origin facing +Z,
  // its left hip towards +X.
  auto c = apply_transform(x, canonical_transform(x, 2, 0));
  auto p0 = c[0][2].narrow(0, 0, 66).view({22, 3});
  EXPECT_NEAR(p0[0][0].item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(p0[0][2].item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(p0[1][0].item<float>(), 0.1f, 1e-5);   // l_hip
  EXPECT_NEAR(p0[2][0].item<float>(), -0.1f, 1e-5);  // r_hip
  EXPECT_TRUE(torch::equal(canonicalize(x), apply_transform(x, canonical_transform(x, 0, 0))));
  EXPECT_THROW(canonical_transform(x, 3, 0), Error);
}

TEST(DataAugment, SwapCaption) {
  EXPECT_EQ(swap_caption("The first person pushes the second person, and person A laughs."),
            "The second person pushes the first person, and person B laughs.");
  EXPECT_EQ(swap_caption("Two people hug."), "Two people hug.");
}

}  // namespace
}  // namespace vimo::data

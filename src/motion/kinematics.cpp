// Forward and inverse kinematics for the 22-joint body (see kinematics.h).
#include "vimo/motion/kinematics.h"

#include <vector>

#include "vimo/core/error.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {
namespace {

std::vector<std::vector<int>> children() {
  std::vector<std::vector<int>> c(kNumJoints);
  for (int j = 1; j < kNumJoints; ++j) c[kParents[j]].push_back(j);
  return c;
}

void check_joints(const torch::Tensor& joints, const char* what) {
  VIMO_CHECK(joints.dim() >= 2 && joints.size(-1) == 3 && joints.size(-2) == kNumJoints,
             std::string(what) + ": joints must be [..., 22, 3], got " + c10::str(joints.sizes()));
}

// Best rotation R (minimising sum |R a_i - b_i|^2) for a, b [..., N, 3].
torch::Tensor kabsch(const torch::Tensor& a, const torch::Tensor& b) {
  auto h = b.transpose(-1, -2).matmul(a);  // [..., 3, 3] = sum b_i a_i^T
  auto [u, s, vh] = torch::linalg_svd(h, false);
  auto d = torch::det(u.matmul(vh));
  auto fix = torch::stack({torch::ones_like(d), torch::ones_like(d), d.sign()}, -1);
  return u.matmul(torch::diag_embed(fix)).matmul(vh);
}

}  // namespace

torch::Tensor forward_kinematics(const torch::Tensor& local_rot, const torch::Tensor& root_pos,
                                 const torch::Tensor& offsets, torch::Tensor* global_rot) {
  VIMO_CHECK(local_rot.dim() >= 3 && local_rot.size(-3) == kNumJoints && local_rot.size(-1) == 3 &&
                 local_rot.size(-2) == 3,
             "forward_kinematics: local_rot must be [..., 22, 3, 3], got " + c10::str(local_rot.sizes()));
  check_joints(offsets, "forward_kinematics offsets");
  auto off = offsets.to(local_rot.dtype());
  std::vector<torch::Tensor> g(kNumJoints), p(kNumJoints);
  g[0] = local_rot.select(-3, 0);
  p[0] = root_pos.to(local_rot.dtype());
  for (int j = 1; j < kNumJoints; ++j) {
    int q = kParents[j];
    g[j] = g[q].matmul(local_rot.select(-3, j));
    p[j] = p[q] + g[q].matmul(off.select(-2, j).unsqueeze(-1)).squeeze(-1);
  }
  if (global_rot) *global_rot = torch::stack(g, -3);
  return torch::stack(p, -2);
}

torch::Tensor inverse_kinematics(const torch::Tensor& joints_in, const torch::Tensor& rest_in) {
  check_joints(joints_in, "inverse_kinematics");
  auto joints = joints_in.to(torch::kFloat64);
  auto rest = (rest_in.defined() ? rest_in : rest_offsets()).to(torch::kFloat64);
  auto ch = children();
  std::vector<torch::Tensor> g(kNumJoints), local(kNumJoints);
  auto fit = [&](int j) {  // global rotation of joint j from its children's positions
    std::vector<torch::Tensor> a, b;
    for (int c : ch[j]) {
      auto rc = rest.select(-2, c);
      a.push_back(rc.expand(joints.select(-2, c).sizes()));
      b.push_back(joints.select(-2, c) - joints.select(-2, j));
    }
    return kabsch(torch::stack(a, -2), torch::stack(b, -2));
  };
  g[0] = fit(0);
  local[0] = g[0];
  for (int j = 1; j < kNumJoints; ++j) {
    auto gp = g[kParents[j]];
    if (ch[j].empty()) {
      g[j] = gp;
    } else if (ch[j].size() > 1) {
      g[j] = fit(j);
    } else {
      int c = ch[j][0];
      auto a = gp.matmul(rest.select(-2, c).unsqueeze(-1)).squeeze(-1);
      auto b = joints.select(-2, c) - joints.select(-2, j);
      // A zero-length bone (coincident joints) carries no direction: keep the parent's frame.
      auto degenerate = (b.norm(2, -1) < 1e-9).unsqueeze(-1).unsqueeze(-1);
      g[j] = torch::where(degenerate, gp, rotation_between(a, b).matmul(gp));
    }
    local[j] = gp.transpose(-1, -2).matmul(g[j]);
  }
  return torch::stack(local, -3);
}

torch::Tensor body_offsets(const torch::Tensor& joints_in) {
  check_joints(joints_in, "body_offsets");
  auto joints = joints_in.to(torch::kFloat64).reshape({-1, kNumJoints, 3});
  auto rest = rest_offsets();
  auto out = rest.clone();
  for (int j = 1; j < kNumJoints; ++j) {
    double len = (joints.select(1, j) - joints.select(1, kParents[j])).norm(2, -1).mean().item<double>();
    out[j] = rest[j] / rest[j].norm() * len;
  }
  out[0] = joints.select(1, 0).mean(0);
  out[0][0] = 0;
  out[0][2] = 0;
  return out;
}

}  // namespace vimo::motion

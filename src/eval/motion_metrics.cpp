// MPJPE, PA-MPJPE, foot skating ratio and capsule penetration between two bodies.
#include "vimo/eval/motion_metrics.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "vimo/core/error.h"
#include "vimo/motion/skeleton.h"

namespace vimo::eval {
namespace {

std::string shape_of(const torch::Tensor& t) { return c10::str(t.sizes()); }

// Float64 CPU copy of a joints tensor [..., J, 3], checked for rank, last dimension and NaN/Inf.
torch::Tensor joints64(const torch::Tensor& t, const char* name, const char* fn, int64_t min_dim = 2) {
  VIMO_CHECK(t.defined() && t.dim() >= min_dim && t.size(-1) == 3,
             std::string(fn) + ": " + name + " must be [..., J, 3] joint positions, got " +
                 (t.defined() ? shape_of(t) : std::string("an undefined tensor")));
  auto x = t.to(torch::kCPU, torch::kFloat64).contiguous();
  VIMO_CHECK(torch::isfinite(x).all().item<bool>(),
             std::string(fn) + ": " + name + " contains NaN or Inf; check the motion that produced it");
  return x;
}

void check_same(const torch::Tensor& a, const torch::Tensor& b, const char* fn) {
  VIMO_CHECK(a.sizes() == b.sizes(),
             std::string(fn) + ": pred " + shape_of(a) + " and gt " + shape_of(b) + " must have the same shape");
}

using Vec3 = std::array<double, 3>;
Vec3 sub(const Vec3& a, const Vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

// Distance between segments p1-q1 and p2-q2 (closest points with both parameters clamped to [0, 1]).
double segment_distance(const Vec3& p1, const Vec3& q1, const Vec3& p2, const Vec3& q2) {
  const Vec3 d1 = sub(q1, p1), d2 = sub(q2, p2), r = sub(p1, p2);
  const double a = dot(d1, d1), e = dot(d2, d2), f = dot(d2, r);
  constexpr double kTiny = 1e-18;
  double s = 0, t = 0;
  if (a <= kTiny && e <= kTiny) {
    s = t = 0;
  } else if (a <= kTiny) {
    t = std::clamp(f / e, 0.0, 1.0);
  } else {
    const double c = dot(d1, r);
    if (e <= kTiny) {
      s = std::clamp(-c / a, 0.0, 1.0);
    } else {
      const double b = dot(d1, d2), den = a * e - b * b;
      s = den > kTiny ? std::clamp((b * f - c * e) / den, 0.0, 1.0) : 0.0;
      t = (b * s + f) / e;
      if (t < 0) {
        t = 0, s = std::clamp(-c / a, 0.0, 1.0);
      } else if (t > 1) {
        t = 1, s = std::clamp((b - c) / a, 0.0, 1.0);
      }
    }
  }
  Vec3 d;
  for (int k = 0; k < 3; ++k) d[k] = (p1[k] + d1[k] * s) - (p2[k] + d2[k] * t);
  return std::sqrt(dot(d, d));
}

}  // namespace

double mpjpe_mm(const torch::Tensor& pred, const torch::Tensor& gt) {
  auto p = joints64(pred, "pred", "mpjpe_mm"), g = joints64(gt, "gt", "mpjpe_mm");
  check_same(p, g, "mpjpe_mm");
  VIMO_CHECK(p.numel() > 0, "mpjpe_mm: pred and gt are empty");
  return 1000.0 * (p - g).norm(2, -1).mean().item<double>();
}

double pa_mpjpe_mm(const torch::Tensor& pred, const torch::Tensor& gt) {
  auto p = joints64(pred, "pred", "pa_mpjpe_mm"), g = joints64(gt, "gt", "pa_mpjpe_mm");
  check_same(p, g, "pa_mpjpe_mm");
  const int64_t J = p.size(-2);
  VIMO_CHECK(J >= 3, "pa_mpjpe_mm: a pose needs at least 3 joints for a rigid alignment, got " + shape_of(p));
  auto x = p.reshape({-1, J, 3}), y = g.reshape({-1, J, 3});  // [N, J, 3]
  VIMO_CHECK(x.size(0) > 0, "pa_mpjpe_mm: pred and gt hold no poses");
  auto mx = x.mean(1, true), my = y.mean(1, true);
  auto xc = x - mx, yc = y - my;
  auto cov = yc.transpose(1, 2).matmul(xc) / static_cast<double>(J);  // [N, 3, 3] = E[y x^T]
  auto [u, s, vh] = torch::linalg_svd(cov, false);
  // Flip the last axis where U V^T would be a reflection.
  auto sign = torch::sign(torch::det(u.matmul(vh)));
  sign = torch::where(sign == 0, torch::ones_like(sign), sign);
  auto flip = torch::ones({x.size(0), 3}, torch::kFloat64);
  flip.select(1, 2).copy_(sign);
  auto rot = u.matmul(torch::diag_embed(flip)).matmul(vh);  // [N, 3, 3]
  auto var_x = xc.pow(2).sum({1, 2}) / static_cast<double>(J);
  auto scale = (s * flip).sum(1) / var_x.clamp_min(1e-300);  // [N]
  auto aligned = scale.view({-1, 1, 1}) * xc.matmul(rot.transpose(1, 2)) + my;
  return 1000.0 * (aligned - y).norm(2, -1).mean().item<double>();
}

double foot_skating_ratio(const torch::Tensor& joints, const FootSkatingOptions& o) {
  auto j = joints64(joints, "joints", "foot_skating_ratio", 3);
  VIMO_CHECK(j.dim() == 3 || j.dim() == 4,
             "foot_skating_ratio: joints must be [T, J, 3] or [T, P, J, 3], got " + shape_of(j));
  if (j.dim() == 3) j = j.unsqueeze(1);
  VIMO_CHECK(j.size(0) >= 2, "foot_skating_ratio: needs at least 2 frames, got " + shape_of(joints));
  VIMO_CHECK(o.fps > 0 && o.height_m > 0 && o.speed_m_s > 0,
             "foot_skating_ratio: fps, height_m and speed_m_s must be positive");
  std::vector<int64_t> feet(o.joints.begin(), o.joints.end());
  if (feet.empty()) feet = {motion::kLeftFoot, motion::kRightFoot};
  for (auto f : feet)
    VIMO_CHECK(f >= 0 && f < j.size(2), "foot_skating_ratio: foot joint " + std::to_string(f) + " is outside the " +
                                            std::to_string(j.size(2)) + " joints");
  auto ft = j.index_select(2, torch::tensor(feet, torch::kLong));  // [T, P, F, 3]
  const int64_t T = ft.size(0);
  auto h = ft.select(3, 1);
  auto contact = (h.slice(0, 0, T - 1) < o.height_m) & (h.slice(0, 1, T) < o.height_m);
  auto xz = ft.index_select(3, torch::tensor({0, 2}, torch::kLong));
  auto speed = (xz.slice(0, 1, T) - xz.slice(0, 0, T - 1)).norm(2, -1) * o.fps;  // [T-1, P, F] m/s
  auto skating = (contact & (speed > o.speed_m_s)).any(2);                       // [T-1, P]
  return skating.to(torch::kFloat64).mean().item<double>();
}

Penetration penetration(const torch::Tensor& a, const torch::Tensor& b, const PenetrationOptions& o) {
  auto ja = joints64(a, "a", "penetration", 3), jb = joints64(b, "b", "penetration", 3);
  VIMO_CHECK(ja.dim() == 3 && ja.size(1) == motion::kNumJoints && ja.sizes() == jb.sizes(),
             "penetration: a and b must both be [T, 22, 3], got " + shape_of(ja) + " and " + shape_of(jb));
  VIMO_CHECK(ja.size(0) > 0, "penetration: the clips have no frames");
  VIMO_CHECK(o.radius_m > 0, "penetration: radius_m must be positive");
  const int64_t T = ja.size(0);
  auto A = ja.accessor<double, 3>(), B = jb.accessor<double, 3>();
  auto pt = [](const auto& acc, int64_t t, int k) { return Vec3{acc[t][k][0], acc[t][k][1], acc[t][k][2]}; };
  int64_t frames = 0;
  double depth_sum = 0;
  for (int64_t t = 0; t < T; ++t) {
    double deepest = 0;
    for (int i = 1; i < motion::kNumJoints; ++i) {
      const Vec3 pa = pt(A, t, motion::kParents[i]), qa = pt(A, t, i);
      for (int k = 1; k < motion::kNumJoints; ++k) {
        const double d = segment_distance(pa, qa, pt(B, t, motion::kParents[k]), pt(B, t, k));
        deepest = std::max(deepest, 2 * o.radius_m - d);
      }
    }
    if (deepest > 0) ++frames, depth_sum += deepest;
  }
  Penetration r;
  r.ratio = static_cast<double>(frames) / static_cast<double>(T);
  r.depth_mm = frames ? 1000.0 * depth_sum / static_cast<double>(frames) : 0.0;
  return r;
}

}  // namespace vimo::eval

// Batched rotation conversions (see rotation.h); formulas are the standard closed forms.
#include "vimo/motion/rotation.h"

#include <cmath>
#include <string>

#include "vimo/core/error.h"

namespace vimo::motion {
namespace {
torch::Tensor skew(const torch::Tensor& v) {  // [..., 3] -> [..., 3, 3]
  auto x = v.select(-1, 0), y = v.select(-1, 1), z = v.select(-1, 2), o = torch::zeros_like(x);
  return torch::stack({o, -z, y, z, o, -x, -y, x, o}, -1).unflatten(-1, {3, 3});
}

torch::Tensor eye_like(const torch::Tensor& m) {  // identity broadcast to m's [..., 3, 3]
  return torch::eye(3, m.options()).expand_as(m);
}
}  // namespace

torch::Tensor axis_angle_to_matrix(const torch::Tensor& aa) {
  auto theta = aa.norm(2, -1, true).unsqueeze(-1);  // [..., 1, 1]
  auto k = skew(aa);
  // Taylor forms below 1e-4 rad keep the gradient finite and the result exact to float precision.
  auto small = theta < 1e-4;
  auto safe = torch::where(small, torch::ones_like(theta), theta);
  auto a = torch::where(small, 1 - theta * theta / 6, torch::sin(safe) / safe);
  auto b = torch::where(small, 0.5 - theta * theta / 24, (1 - torch::cos(safe)) / (safe * safe));
  return eye_like(k) + a * k + b * k.matmul(k);
}

torch::Tensor quat_to_matrix(const torch::Tensor& q_in) {
  auto q = q_in / q_in.norm(2, -1, true);
  auto w = q.select(-1, 0), x = q.select(-1, 1), y = q.select(-1, 2), z = q.select(-1, 3);
  return torch::stack({1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                       2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                       2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)},
                      -1)
      .unflatten(-1, {3, 3});
}

torch::Tensor matrix_to_quat(const torch::Tensor& m) {
  // Shepperd's method: pick, per element, the largest of the four candidate denominators.
  auto m00 = m.select(-1, 0).select(-1, 0), m11 = m.select(-1, 1).select(-1, 1),
       m22 = m.select(-1, 2).select(-1, 2);
  auto m01 = m.select(-2, 0).select(-1, 1), m10 = m.select(-2, 1).select(-1, 0);
  auto m02 = m.select(-2, 0).select(-1, 2), m20 = m.select(-2, 2).select(-1, 0);
  auto m12 = m.select(-2, 1).select(-1, 2), m21 = m.select(-2, 2).select(-1, 1);
  auto cand = torch::stack({1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                            1 - m00 - m11 + m22}, -1);
  auto r = torch::sqrt(cand.clamp_min(1e-12));  // 2|w|, 2|x|, 2|y|, 2|z|
  auto r0 = r.select(-1, 0), r1 = r.select(-1, 1), r2 = r.select(-1, 2), r3 = r.select(-1, 3);
  auto q0 = torch::stack({r0 * r0, m21 - m12, m02 - m20, m10 - m01}, -1) / (2 * r0.unsqueeze(-1));
  auto q1 = torch::stack({m21 - m12, r1 * r1, m10 + m01, m02 + m20}, -1) / (2 * r1.unsqueeze(-1));
  auto q2 = torch::stack({m02 - m20, m10 + m01, r2 * r2, m21 + m12}, -1) / (2 * r2.unsqueeze(-1));
  auto q3 = torch::stack({m10 - m01, m02 + m20, m21 + m12, r3 * r3}, -1) / (2 * r3.unsqueeze(-1));
  auto lead = cand.sizes().slice(0, cand.dim() - 1).vec();
  auto all = torch::stack({q0, q1, q2, q3}, -2).reshape({-1, 4, 4});  // [N, 4 candidates, 4]
  auto best = cand.reshape({-1, 4}).argmax(-1);
  auto q = all.index({torch::arange(all.size(0), best.options()), best});
  lead.push_back(4);
  q = q.reshape(lead);
  q = q / q.norm(2, -1, true);
  return torch::where(q.select(-1, 0).unsqueeze(-1) < 0, -q, q);
}

torch::Tensor axis_angle_to_quat(const torch::Tensor& aa) {
  auto theta = aa.norm(2, -1, true);
  auto small = theta < 1e-6;
  auto safe = torch::where(small, torch::ones_like(theta), theta);
  auto s = torch::where(small, 0.5 - theta * theta / 48, torch::sin(safe / 2) / safe);
  return torch::cat({torch::cos(theta / 2), aa * s}, -1);
}

torch::Tensor quat_to_axis_angle(const torch::Tensor& q_in) {
  auto q = q_in / q_in.norm(2, -1, true);
  q = torch::where(q.select(-1, 0).unsqueeze(-1) < 0, -q, q);
  auto v = q.narrow(-1, 1, 3);
  auto sn = v.norm(2, -1, true);
  auto angle = 2 * torch::atan2(sn, q.narrow(-1, 0, 1));
  auto small = sn < 1e-6;
  auto scale = torch::where(small, 2.0 / q.narrow(-1, 0, 1).clamp_min(1e-12),
                            angle / torch::where(small, torch::ones_like(sn), sn));
  return v * scale;
}

torch::Tensor matrix_to_axis_angle(const torch::Tensor& m) { return quat_to_axis_angle(matrix_to_quat(m)); }

torch::Tensor matrix_to_6d(const torch::Tensor& m) { return m.narrow(-2, 0, 2).flatten(-2); }

torch::Tensor sixd_to_matrix(const torch::Tensor& d6) {
  auto a1 = d6.narrow(-1, 0, 3), a2 = d6.narrow(-1, 3, 3);
  auto b1 = a1 / a1.norm(2, -1, true).clamp_min(1e-12);
  auto b2 = a2 - (b1 * a2).sum(-1, true) * b1;
  b2 = b2 / b2.norm(2, -1, true).clamp_min(1e-12);
  auto b3 = torch::cross(b1, b2, -1);
  return torch::stack({b1, b2, b3}, -2);
}

torch::Tensor quat_mul(const torch::Tensor& a, const torch::Tensor& b) {
  auto aw = a.select(-1, 0), ax = a.select(-1, 1), ay = a.select(-1, 2), az = a.select(-1, 3);
  auto bw = b.select(-1, 0), bx = b.select(-1, 1), by = b.select(-1, 2), bz = b.select(-1, 3);
  return torch::stack({aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                       aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw},
                      -1);
}

torch::Tensor quat_conj(const torch::Tensor& q) {
  return torch::cat({q.narrow(-1, 0, 1), -q.narrow(-1, 1, 3)}, -1);
}

torch::Tensor quat_rotate(const torch::Tensor& q, const torch::Tensor& v) {
  auto w = q.narrow(-1, 0, 1), u = q.narrow(-1, 1, 3);
  auto uv = torch::cross(u.expand_as(v), v, -1);
  return v + 2 * (w * uv + torch::cross(u.expand_as(v), uv, -1));
}

torch::Tensor rotation_between(const torch::Tensor& u_in, const torch::Tensor& v_in) {
  auto u = u_in / u_in.norm(2, -1, true).clamp_min(1e-12);
  auto v = v_in / v_in.norm(2, -1, true).clamp_min(1e-12);
  auto c = (u * v).sum(-1, true);
  auto axis = torch::cross(u, v, -1);
  // For nearly opposite directions the cross product vanishes: turn by pi about any axis normal to u.
  auto ex = torch::zeros_like(u);
  ex.select(-1, 0).fill_(1);
  auto ey = torch::zeros_like(u);
  ey.select(-1, 1).fill_(1);
  auto alt = torch::cross(u, torch::where(u.select(-1, 0).abs().unsqueeze(-1) < 0.9, ex, ey), -1);
  alt = alt / alt.norm(2, -1, true);
  auto opposite = c < -1 + 1e-9;
  auto k = skew(axis);
  // Rodrigues with sin = |axis|, cos = c: R = I + K + K^2 / (1 + c).
  auto r = eye_like(k) + k + k.matmul(k) / (1 + c).clamp_min(1e-12).unsqueeze(-1);
  auto flip = 2 * alt.unsqueeze(-1) * alt.unsqueeze(-2) - eye_like(k);
  return torch::where(opposite.unsqueeze(-1), flip, r);
}

torch::Tensor rotation_about_y(const torch::Tensor& angle) {
  auto c = torch::cos(angle), s = torch::sin(angle), o = torch::zeros_like(angle), l = torch::ones_like(angle);
  return torch::stack({c, o, s, o, l, o, -s, o, c}, -1).unflatten(-1, {3, 3});
}

torch::Tensor euler_to_matrix(const torch::Tensor& degrees, const std::array<int, 3>& order) {
  auto rad = degrees * (M_PI / 180.0);
  torch::Tensor r;
  for (int i = 0; i < 3; ++i) {
    auto aa = torch::zeros(rad.sizes(), rad.options());
    aa.select(-1, order[i]).copy_(rad.select(-1, i));
    auto m = axis_angle_to_matrix(aa);
    r = i == 0 ? m : r.matmul(m);
  }
  return r;
}

torch::Tensor matrix_to_euler(const torch::Tensor& m, const std::array<int, 3>& order) {
  const int i = order[0], j = order[1], k = order[2];
  VIMO_CHECK(i >= 0 && i < 3 && j >= 0 && j < 3 && k >= 0 && k < 3 && i != j && j != k && i != k,
             "matrix_to_euler: the order must name three different axes (0/1/2 for X/Y/Z), got " + std::to_string(i) +
                 std::to_string(j) + std::to_string(k));
  // s = +1 for the cyclic orders (XYZ, YZX, ZXY), -1 for the others: e_i x e_j = s e_k.
  const double s = (j - i + 3) % 3 == 1 ? 1.0 : -1.0;
  auto at = [&](int r, int c) { return m.select(-2, r).select(-1, c); };
  // With R = R_i(a) R_j(b) R_k(c): R[i][k] = s sin b, R[i][i] = cos b cos c, R[i][j] = -s cos b sin c,
  // R[k][k] = cos a cos b, R[j][k] = -s sin a cos b.
  auto cos_b = torch::sqrt(at(i, i) * at(i, i) + at(i, j) * at(i, j));
  auto b = torch::atan2(s * at(i, k), cos_b);
  auto a = torch::atan2(-s * at(j, k), at(k, k));
  auto c = torch::atan2(-s * at(i, j), at(i, i));
  // Gimbal lock (cos b ~ 0): take c = 0, so R = R_i(a) R_j(b) and its column j is R_i(a) e_j.
  auto lock = cos_b < 1e-6;
  a = torch::where(lock, torch::atan2(s * at(k, j), at(j, j)), a);
  c = torch::where(lock, torch::zeros_like(c), c);
  return torch::stack({a, b, c}, -1) * (180.0 / M_PI);
}

}  // namespace vimo::motion

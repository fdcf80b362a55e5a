// The synthetic body: proportions, limb IK into SMPL-convention local rotations, forward kinematics,
// and the stepping planner that keeps planted feet still (see synth_body.h).
#include "vimo/motion/synth_body.h"

#include <algorithm>

#include "vimo/motion/skeleton.h"

namespace vimo::motion::synth {

M3 M3::operator*(const M3& o) const {
  M3 r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r.m[i][j] = m[i][0] * o.m[0][j] + m[i][1] * o.m[1][j] + m[i][2] * o.m[2][j];
  return r;
}
M3 M3::t() const {
  M3 r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r.m[i][j] = m[j][i];
  return r;
}
M3 M3::cols(V3 a, V3 b, V3 c) {
  M3 r;
  r.m[0][0] = a.x, r.m[1][0] = a.y, r.m[2][0] = a.z;
  r.m[0][1] = b.x, r.m[1][1] = b.y, r.m[2][1] = b.z;
  r.m[0][2] = c.x, r.m[1][2] = c.y, r.m[2][2] = c.z;
  return r;
}
M3 M3::axis_angle(V3 k, double a) {
  k = unit(k);
  double c = std::cos(a), s = std::sin(a), v = 1 - c;
  M3 r;
  r.m[0][0] = c + k.x * k.x * v, r.m[0][1] = k.x * k.y * v - k.z * s, r.m[0][2] = k.x * k.z * v + k.y * s;
  r.m[1][0] = k.y * k.x * v + k.z * s, r.m[1][1] = c + k.y * k.y * v, r.m[1][2] = k.y * k.z * v - k.x * s;
  r.m[2][0] = k.z * k.x * v - k.y * s, r.m[2][1] = k.z * k.y * v + k.x * s, r.m[2][2] = c + k.z * k.z * v;
  return r;
}
M3 M3::between(V3 from, V3 to) {
  from = unit(from), to = unit(to);
  V3 ax = cross(from, to);
  double s = norm(ax), c = dot(from, to);
  if (s < 1e-9) {
    if (c > 0) return M3{};
    V3 p = std::abs(from.x) < 0.9 ? V3{1, 0, 0} : V3{0, 1, 0};
    return axis_angle(cross(from, p), M_PI);
  }
  return axis_angle(ax, std::atan2(s, c));
}
double wrap_angle(double a) {
  while (a > M_PI) a -= 2 * M_PI;
  while (a <= -M_PI) a += 2 * M_PI;
  return a;
}

uint64_t Rng::next() {
  uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }

Body make_body(Rng& rng) {
  Body b;
  const double s = rng.uniform(0.9, 1.08), leg = rng.uniform(0.95, 1.05), arm = rng.uniform(0.94, 1.06);
  const double torso = rng.uniform(0.95, 1.05), width = rng.uniform(0.92, 1.1);
  for (int j = 0; j < kNumJoints; ++j) b.off[j] = V3{kRestOffsets[j][0], kRestOffsets[j][1], kRestOffsets[j][2]} * s;
  for (int j : {kLeftKnee, kRightKnee, kLeftAnkle, kRightAnkle}) b.off[j] = b.off[j] * leg;
  for (int j : {kSpine1, kSpine2, kSpine3, kNeck, kHead}) b.off[j] = b.off[j] * torso;
  for (int j : {kLeftElbow, kRightElbow, kLeftWrist, kRightWrist}) b.off[j] = b.off[j] * arm;
  for (int j : {kLeftHip, kRightHip, kLeftCollar, kRightCollar, kLeftShoulder, kRightShoulder}) b.off[j].x *= width;
  b.thigh = norm(b.off[kLeftKnee]), b.shin = norm(b.off[kLeftAnkle]);
  b.upper_arm = norm(b.off[kLeftElbow]), b.forearm = norm(b.off[kLeftWrist]);
  b.ankle_height = -b.off[kLeftFoot].y;
  b.pelvis_height = -(b.off[kLeftHip].y + b.off[kLeftKnee].y + b.off[kLeftAnkle].y + b.off[kLeftFoot].y);
  const double spine = b.off[kSpine1].y + b.off[kSpine2].y + b.off[kSpine3].y;
  b.shoulder_height = b.pelvis_height + spine + b.off[kLeftCollar].y + b.off[kLeftShoulder].y;
  b.head_height = b.pelvis_height + spine + b.off[kNeck].y + b.off[kHead].y;
  b.scale = s;
  return b;
}

V3 rest_ankle(const Body& b, int side) {
  const int hip = side == 0 ? kRightHip : kLeftHip;
  V3 a = b.off[hip] + b.off[hip + 3] + b.off[hip + 6];  // hip, knee, ankle of that side
  return {a.x, 0, a.z};
}

namespace {

// Two-bone IK: global rotation of the upper joint so its bone points at the middle joint, which
// juts towards `pole`. rest_jut: the direction the middle joint juts in the rest pose when bent.
M3 two_bone(V3 s, V3 w, double l1, double l2, V3 pole, V3 rest_bone, V3 rest_jut, V3& elbow) {
  V3 d = w - s;
  const double dist = std::clamp(norm(d), 0.35 * (l1 + l2), 0.999 * (l1 + l2));
  V3 dir = unit(d, {0, -1, 0});
  double ca = std::clamp((l1 * l1 + dist * dist - l2 * l2) / (2 * l1 * dist), -1.0, 1.0);
  V3 p = pole - dir * dot(pole, dir);
  p = unit(p, unit(cross(dir, {0, 1, 0}), {1, 0, 0}));
  elbow = s + dir * (l1 * ca) + p * (l1 * std::sqrt(1 - ca * ca));
  V3 xd = unit(elbow - s), yd = unit(p - xd * dot(p, xd), p);
  V3 xr = unit(rest_bone), yr = unit(rest_jut - xr * dot(rest_jut, xr));
  return M3::cols(xd, yd, cross(xd, yd)) * M3::cols(xr, yr, cross(xr, yr)).t();
}

}  // namespace

PoseOutput solve_pose(const Body& b, const PoseInput& in) {
  PoseOutput o;
  auto& L = o.local;
  std::array<M3, kNumJoints> G;
  auto& p = o.joints;
  // The pelvis takes half of a forward bend (hips flex), the spine the rest.
  const M3 r0 = M3::ry(in.yaw) * M3::rx(0.5 * in.lean_fwd) * M3::rz(0.3 * in.lean_side);
  double y = b.pelvis_height - 0.01 - in.crouch;  // knees never quite locked
  for (int side = 0; side < 2; ++side) {
    V3 h = r0 * b.off[side == 0 ? kRightHip : kLeftHip];
    V3 a = in.foot[side].target;
    double dx = in.root.x + h.x - a.x, dz = in.root.z + h.z - a.z, reach = 0.998 * (b.thigh + b.shin);
    double dxz2 = dx * dx + dz * dz;
    y = std::min(y, a.y - h.y + std::sqrt(std::max(reach * reach - dxz2, 0.0)));
  }
  y = std::max(y, 0.6 * b.pelvis_height);
  L[0] = G[0] = r0;
  p[0] = {in.root.x, y, in.root.z};
  auto fk = [&](int j) {
    int q = kParents[j];
    p[j] = p[q] + G[q] * b.off[j];
    G[j] = G[q] * L[j];
  };
  const M3 spine = M3::ry(in.twist / 3) * M3::rx(0.5 * in.lean_fwd / 3) * M3::rz(0.7 * in.lean_side / 3);
  L[kSpine1] = L[kSpine2] = L[kSpine3] = spine;
  L[kNeck] = M3::ry(std::clamp(in.neck_yaw, -1.0, 1.0)) * M3::rx(std::clamp(in.neck_pitch, -0.5, 0.7));
  for (int j : {kSpine1, kSpine2, kSpine3, kNeck, kHead, kLeftCollar, kRightCollar}) fk(j);
  // Legs: hip -> knee -> ankle, foot orientation from the planner.
  for (int side = 0; side < 2; ++side) {
    const int hip = side == 0 ? kRightHip : kLeftHip, knee = hip + 3, ankle = hip + 6, toe = hip + 9;
    fk(hip);  // position only; its rotation follows
    V3 k;
    V3 pole = heading(in.foot_yaw[side]);
    G[hip] = two_bone(p[hip], in.foot[side].target, b.thigh, b.shin, pole, b.off[knee], {0, 0, 1}, k);
    L[hip] = G[0].t() * G[hip];
    p[knee] = p[hip] + G[hip] * b.off[knee];
    L[knee] = M3::between(b.off[ankle], G[hip].t() * (in.foot[side].target - p[knee]));
    G[knee] = G[hip] * L[knee];
    p[ankle] = p[knee] + G[knee] * b.off[ankle];
    L[ankle] = G[knee].t() * (M3::ry(in.foot_yaw[side]) * M3::rx(in.foot_pitch[side]));
    G[ankle] = G[knee] * L[ankle];
    fk(toe);
  }
  // Arms: shoulder -> elbow -> wrist, blended from a relaxed hang to the scripted target.
  const V3 fwd = heading(in.yaw), left = {std::cos(in.yaw), 0, -std::sin(in.yaw)};
  for (int side = 0; side < 2; ++side) {
    const int sh = side == 0 ? kRightShoulder : kLeftShoulder, el = sh + 2, wr = sh + 4;
    const V3 out = side == 0 ? left * -1.0 : left;
    fk(sh);
    const double len = b.upper_arm + b.forearm;
    V3 rest = p[sh] + V3{0, -0.95 * len, 0} + fwd * (0.04 + in.arm_swing[side]) + out * 0.07;
    V3 rest_pole = fwd * -1.0 + out * 0.5;
    const auto& arm = in.arm[side];
    V3 target = lerp(rest, arm.target, arm.w), pole = unit(lerp(rest_pole, unit(arm.pole), arm.w), rest_pole);
    V3 e;
    G[sh] = two_bone(p[sh], target, b.upper_arm, b.forearm, pole, b.off[el], {0, 0, -1}, e);
    L[sh] = G[kParents[sh]].t() * G[sh];
    p[el] = p[sh] + G[sh] * b.off[el];
    L[el] = M3::between(b.off[wr], G[sh].t() * (target - p[el]));
    G[el] = G[sh] * L[el];
    fk(wr);
  }
  return o;
}

void plan_steps(const Body& b, std::vector<PoseInput>& fr, double step_time) {
  const int T = static_cast<int>(fr.size());
  if (T == 0) return;
  auto ideal = [&](int side, int t) {
    const auto& f = fr[std::clamp(t, 0, T - 1)];
    V3 a = f.root + M3::ry(f.yaw) * rest_ankle(b, side);
    return V3{a.x, b.ankle_height, a.z};
  };
  auto ideal_yaw = [&](int t) { return fr[std::clamp(t, 0, T - 1)].yaw; };
  struct Foot {
    V3 at;
    double yaw;
    bool swing = false;
    int t0 = 0, t1 = 0;
    V3 from, to;
    double yaw0 = 0, yaw1 = 0;
  } ft[2];
  for (int s = 0; s < 2; ++s) ft[s].at = ideal(s, 0), ft[s].yaw = ideal_yaw(0);
  const int D = std::max(6, static_cast<int>(std::lround(step_time * kFps)));
  int last_land = -100;
  for (int t = 0; t < T; ++t) {
    for (auto& f : ft)
      if (f.swing && t >= f.t1) f.swing = false, f.at = f.to, f.yaw = f.yaw1, last_land = t;
    const bool scripted = fr[t].kick[0].w > 0 || fr[t].kick[1].w > 0;
    if (!scripted && !ft[0].swing && !ft[1].swing && t - last_land >= 3) {
      double err[2];
      for (int s = 0; s < 2; ++s) {
        V3 d = ft[s].at - ideal(s, t + D / 2);
        err[s] = std::hypot(d.x, d.z) + 0.25 * std::abs(wrap_angle(ft[s].yaw - ideal_yaw(t + D / 2)));
      }
      int s = err[0] >= err[1] ? 0 : 1;
      if (err[s] > 0.07) {
        auto& f = ft[s];
        f.swing = true, f.t0 = t, f.t1 = t + D, f.from = f.at, f.yaw0 = f.yaw;
        f.to = ideal(s, t + D + D / 2), f.yaw1 = f.yaw0 + wrap_angle(ideal_yaw(t + D + D / 2) - f.yaw0);
        V3 step = f.to - f.from;  // a stride (one foot's travel) is never longer than the legs allow
        double len = std::hypot(step.x, step.z), cap = 1.6 * (b.thigh + b.shin);
        if (len > cap) f.to = f.from + step * (cap / len);
      }
    }
    auto& pi = fr[t];
    for (int s = 0; s < 2; ++s) {
      const auto& f = ft[s];
      V3 pos = f.at;
      double yaw = f.yaw, pitch = 0;
      if (f.swing) {
        double u = static_cast<double>(t - f.t0) / (f.t1 - f.t0), e = u * u * (3 - 2 * u);
        double dist = std::hypot(f.to.x - f.from.x, f.to.z - f.from.z);
        pos = lerp(f.from, f.to, e);
        pos.y = b.ankle_height + (0.04 + 0.12 * std::min(1.0, dist / 0.6)) * std::sin(M_PI * u);
        yaw = f.yaw0 + (f.yaw1 - f.yaw0) * e;
        pitch = 0.15 * std::sin(2 * M_PI * u) * std::min(1.0, dist / 0.3);
      }
      const auto& k = pi.kick[s];
      if (k.w > 0) pos = lerp(pos, k.target, k.w), pitch += (pi.kick_pitch[s] - pitch) * k.w;
      pi.foot[s].target = pos;
      pi.foot_yaw[s] = yaw;
      pi.foot_pitch[s] = pitch;
    }
    // Relaxed arms swing against the opposite leg.
    V3 fwd = heading(pi.yaw);
    for (int s = 0; s < 2; ++s) pi.arm_swing[s] = 0.45 * dot(pi.foot[1 - s].target - pi.root, fwd);
  }
}

}  // namespace vimo::motion::synth

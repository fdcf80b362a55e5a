// Building blocks of the synthetic interaction scripts: per-person frame tracks, eased paths and
// turns, limb targets, and the approach that most face-to-face interactions start with.
#pragma once
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth.h"
#include "vimo/motion/synth_body.h"

namespace vimo::motion::synth {

inline int sec(double s) { return static_cast<int>(std::lround(s * kFps)); }
inline double ease(double u) {
  u = std::clamp(u, 0.0, 1.0);
  return u * u * (3 - 2 * u);
}
// 0 before a, rises to 1 at b, holds to c, falls to 0 at d.
inline double env(int t, int a, int b, int c, int d) {
  if (t <= a || t >= d) return 0;
  if (t < b) return ease(static_cast<double>(t - a) / std::max(1, b - a));
  if (t <= c) return 1;
  return 1 - ease(static_cast<double>(t - c) / std::max(1, d - c));
}

struct Person {
  Body body;
  std::vector<PoseInput> f;
  double step_time = 0.4;
  V3 left(int t) const { return {std::cos(f[t].yaw), 0, -std::sin(f[t].yaw)}; }
  V3 fwd(int t) const { return heading(f[t].yaw); }
  V3 side(int t, int s) const { return s == 0 ? left(t) * -1.0 : left(t); }  // outward for hand s
  // A point in this person's body frame: lateral (+left), height above the floor, forward.
  V3 at(int t, double lat, double h, double fw) const {
    V3 p = f[t].root + left(t) * lat + fwd(t) * fw;
    return {p.x, h, p.z};
  }
  V3 shoulder(int t, int s) const {
    return at(t, (s == 0 ? -1 : 1) * std::abs(body.off[kLeftShoulder].x + body.off[kLeftCollar].x), body.shoulder_height, 0);
  }
  double chest() const { return body.pelvis_height + 0.38 * body.scale; }
};

struct Scene {
  int T = 0;
  int end = 0;  // when set, the clip is cut here (scripts allocate generously, then trim)
  Person p[2];
  SynthRoles roles;
  Rng* rng = nullptr;
  Person& A() { return p[roles.actor]; }
  Person& B() { return p[1 - roles.actor]; }
  void resize(int frames) {
    T = frames;
    for (auto& q : p) q.f.assign(T, PoseInput{});
  }
  double u(double lo, double hi) { return rng->uniform(lo, hi); }
};

inline void move_root(Person& q, int f0, int f1, V3 to, bool fast_start = false) {
  const int T = static_cast<int>(q.f.size());
  f0 = std::clamp(f0, 0, T - 1);
  V3 from = q.f[f0].root;
  for (int t = f0; t < T; ++t) {
    double u = std::clamp(static_cast<double>(t - f0) / std::max(1, f1 - f0), 0.0, 1.0);
    q.f[t].root = lerp(from, to, fast_start ? 1 - (1 - u) * (1 - u) : ease(u));
  }
}
inline void turn_to(Person& q, int f0, int f1, double yaw) {
  const int T = static_cast<int>(q.f.size());
  f0 = std::clamp(f0, 0, T - 1);
  double from = q.f[f0].yaw, d = wrap_angle(yaw - from);
  for (int t = f0; t < T; ++t) q.f[t].yaw = from + d * ease(static_cast<double>(t - f0) / std::max(1, f1 - f0));
}
// Walks q to `to` starting at f0 at about `speed` m/s, turning to walk forwards and then to face
// `face_yaw`; returns the arrival frame.
inline int walk_to(Person& q, int f0, V3 to, double speed, double face_yaw) {
  double d = std::hypot(to.x - q.f[f0].root.x, to.z - q.f[f0].root.z);
  int f1 = f0 + std::max(sec(0.6), sec(1.5 * d / speed));
  double dir = yaw_towards(q.f[f0].root, to);
  if (d > 0.3 && std::abs(wrap_angle(dir - q.f[f0].yaw)) < 2.0) turn_to(q, f0, f0 + sec(0.4), dir);
  move_root(q, f0, f1, to);
  turn_to(q, std::max(f0, f1 - sec(0.5)), f1 + sec(0.2), face_yaw);
  return f1;
}
// Layers a limb target over what earlier calls set for this frame: weight w blends towards it.
inline void reach(Person& q, int s, int t, V3 target, V3 pole, double w) {
  if (w <= 0) return;
  auto& a = q.f[t].arm[s];
  if (a.w <= 0) {
    a = {target, pole, w};
    return;
  }
  a.target = lerp(a.target, target, w), a.pole = lerp(a.pole, pole, w), a.w = std::max(a.w, w);
}
// Guard: fists in front of the chin.
inline V3 guard(Person& q, int t, int s) { return q.at(t, (s == 0 ? -0.12 : 0.12), q.body.shoulder_height + 0.02, 0.28); }
inline V3 elbow_down(Person& q, int t, int s) { return V3{0, -1, 0} + q.side(t, s) * 0.6; }

// Places A at the origin facing +Z and B in front at `dist`, facing back (with some slack).
inline void face_off(Scene& s, double dist) {
  for (int t = 0; t < s.T; ++t) {
    s.A().f[t].root = {0, 0, 0};
    s.B().f[t].root = {0, 0, dist}, s.B().f[t].yaw = M_PI;
  }
  double ja = s.u(-0.25, 0.25), jb = s.u(-0.25, 0.25);
  for (int t = 0; t < s.T; ++t) s.A().f[t].yaw = ja, s.B().f[t].yaw = M_PI + jb;
}

// Both, one or the other walks up to `gap`; returns the meeting frame.
inline int meet(Scene& s, double gap, double speed) {
  auto& A = s.A();
  auto& B = s.B();
  double d = A.f[0].root.z - B.f[0].root.z;
  d = std::abs(d);
  int mode = s.rng->pick(3);
  s.roles.variant = mode == 0 ? "both_approach" : mode == 1 ? "actor_approaches" : "partner_approaches";
  int f0 = sec(s.u(0.2, 0.7));
  double za = A.f[0].root.z, zb = B.f[0].root.z, move = d - gap;
  int fa = f0, fb = f0;
  if (mode == 0) {
    fa = walk_to(A, f0, {0, 0, za + move / 2}, speed, 0.0);
    fb = walk_to(B, f0 + sec(s.u(0, 0.3)), {0, 0, zb - move / 2}, speed, M_PI);
  } else if (mode == 1) {
    fa = walk_to(A, f0, {0, 0, za + move}, speed, 0.0);
  } else {
    fb = walk_to(B, f0, {0, 0, zb - move}, speed, M_PI);
  }
  return std::max(fa, fb);
}


// Plans the steps and solves every frame of n people, then turns the world by rw about the origin and
// shifts it: joints [T, n, 22, 3] and local rotations [T, n, 22, 3, 3] (joint 0 world), float32.
std::pair<torch::Tensor, torch::Tensor> solve_people(Person* const* people, int n, int T, const M3& rw, V3 shift);

// The scripts, one per SynthType (synth_choreo.cpp: face-to-face; synth_choreo_paths.cpp: the rest).
void handshake(Scene& s);
void hug(Scene& s);
void high_five(Scene& s);
void wave(Scene& s);
void push(Scene& s);
void punch(Scene& s);
void bow(Scene& s);
void walk_together(Scene& s);
void follow(Scene& s);
void hand_over(Scene& s);
void kick(Scene& s);
void dance(Scene& s);

}  // namespace vimo::motion::synth

// Face-to-face synthetic interactions: handshake, hug, high five, wave, push, punch and bow.
#include "vimo/motion/synth_script.h"

namespace vimo::motion::synth {

void handshake(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.6, 3.0));
  s.roles.actor_side = s.roles.partner_side = s.rng->chance(0.85) ? 0 : 1;
  int fm = meet(s, s.u(0.72, 0.85), s.u(0.8, 1.2));
  auto& A = s.A();
  auto& B = s.B();
  int hs = s.roles.actor_side, pumps = 2 + s.rng->pick(3);
  double period = s.u(0.3, 0.45);
  int r0 = fm - sec(0.4), r1 = fm + sec(0.25), r2 = r1 + sec(period * pumps), r3 = r2 + sec(0.5);
  for (int t = 0; t < s.T; ++t) {
    V3 mid = lerp(A.f[t].root, B.f[t].root, 0.5);
    double h = 0.5 * (A.body.pelvis_height + B.body.pelvis_height) + 0.08;
    double pump = t > r1 && t < r2 ? 0.045 * std::sin(2 * M_PI * (t - r1) / (kFps * period)) : 0;
    V3 m{mid.x, h + pump, mid.z};
    double w = env(t, r0, r1, r2, r3);
    reach(A, hs, t, m + A.side(t, hs) * 0.03, elbow_down(A, t, hs), w);
    reach(B, hs, t, m + B.side(t, hs) * 0.03, elbow_down(B, t, hs), w);
  }
  if (s.rng->chance(0.5)) move_root(B, r3, r3 + sec(0.8), B.f[r3].root + B.fwd(r3) * -0.35);
  s.end = r3 + sec(s.u(1.0, 1.5));
}

void hug(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.3, 2.5));
  int fm = meet(s, s.u(0.36, 0.42), s.u(0.7, 1.1));
  auto& A = s.A();
  auto& B = s.B();
  int hold = sec(s.u(1.2, 2.2)), lag = sec(s.u(0.2, 0.5));
  int a0 = fm - sec(0.7), a1 = fm, a2 = a1 + hold, a3 = a2 + sec(0.6);
  double sway = s.u(0.05, 0.12), sway_f = s.u(0.4, 0.8);
  int high = s.rng->pick(2);  // the actor's arm that goes over the partner's shoulder
  for (int t = 0; t < s.T; ++t) {
    for (int who = 0; who < 2; ++who) {
      Person& me = who == 0 ? A : B;
      Person& other = who == 0 ? B : A;
      int d = who == 0 ? 0 : lag;
      double w = env(t, a0 + d, a1 + d, a2, a3);
      if (w <= 0) continue;
      for (int sd = 0; sd < 2; ++sd) {
        bool over = (sd == high) == (who == 0);
        V3 back = other.at(t, 0, over ? other.body.shoulder_height - 0.08 : other.chest() - 0.1, -0.1);
        V3 tgt = back + me.side(t, sd) * -0.14;  // wrap round to the far side of the partner's back
        reach(me, sd, t, tgt, me.side(t, sd) + V3{0, over ? 0.3 : -0.4, 0}, w);
      }
      me.f[t].lean_fwd = 0.12 * w;
      me.f[t].lean_side = sway * w * std::sin(2 * M_PI * sway_f * (t - a1) / kFps);
      me.f[t].neck_yaw = 0.5 * w;  // both look to their left, past the other's head
    }
  }
  if (s.rng->chance(0.6)) move_root(A, a3, a3 + sec(0.8), A.f[a3].root + A.fwd(a3) * -0.4);
  s.end = a3 + sec(s.u(1.0, 1.4));
}

void high_five(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.5, 3.0));
  int fm = meet(s, s.u(0.8, 0.95), s.u(0.9, 1.3));
  auto& A = s.A();
  auto& B = s.B();
  int ha = s.rng->pick(2), hb = s.rng->chance(0.6) ? 1 - ha : ha;  // facing: A's right meets B's left
  s.roles.actor_side = ha, s.roles.partner_side = hb;
  int r0 = fm - sec(0.5), hit = fm + sec(s.u(0.2, 0.4)), r3 = hit + sec(0.7);
  for (int t = 0; t < s.T; ++t) {
    V3 mid = lerp(A.f[t].root, B.f[t].root, 0.5);
    double h = std::min(A.body.head_height, B.body.head_height) + 0.2;
    V3 m{mid.x, h, mid.z};
    if (ha == 1 - hb) m = m + A.side(t, ha) * 0.15;
    // Hands approach the meeting point, touch at `hit`, then bounce back and drop.
    double k = t < hit ? 0.15 * (1 - ease(static_cast<double>(t - r0) / (hit - r0))) : 0.12 * ease((t - hit) / 6.0);
    reach(A, ha, t, m + A.fwd(t) * -k + V3{0, 0.03, 0}, elbow_down(A, t, ha), env(t, r0, hit - 3, hit + 3, r3));
    reach(B, hb, t, m + B.fwd(t) * -k + V3{0, 0.03, 0}, elbow_down(B, t, hb), env(t, r0 + 2, hit - 3, hit + 3, r3));
  }
  s.end = r3 + sec(s.u(0.4, 0.9));
}

void wave(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(2.5, 5.0));
  auto& A = s.A();
  auto& B = s.B();
  s.roles.actor_side = s.rng->pick(2), s.roles.partner_side = s.rng->pick(2);
  int a0 = sec(s.u(0.3, 0.8)), a1 = a0 + sec(s.u(1.6, 2.4));
  int b0 = a0 + sec(s.u(0.8, 1.3)), b1 = b0 + sec(s.u(1.5, 2.2));
  if (s.rng->chance(0.4)) {  // the partner first looks elsewhere and turns on seeing the wave
    double off = s.u(0.8, 1.6) * (s.rng->chance(0.5) ? 1 : -1);
    for (int t = 0; t < s.T; ++t) B.f[t].yaw += off;
    turn_to(B, a0 + sec(0.2), b0, M_PI + s.u(-0.2, 0.2));
    s.roles.variant = "partner_turns";
  }
  auto waving = [&](Person& q, int hand, int t0, int t1, double freq) {
    for (int t = t0; t < std::min(t1 + sec(0.5), s.T); ++t) {
      double w = env(t, t0, t0 + sec(0.4), t1, t1 + sec(0.5));
      V3 sh = q.shoulder(t, hand);
      V3 tgt = sh + q.side(t, hand) * (0.22 + 0.13 * std::sin(2 * M_PI * freq * (t - t0) / kFps)) + V3{0, 0.3, 0} +
               q.fwd(t) * 0.12;
      reach(q, hand, t, tgt, q.side(t, hand) + V3{0, -0.8, 0}, w);
      q.f[t].neck_pitch = -0.1 * w;
    }
  };
  waving(A, s.roles.actor_side, a0, a1, s.u(1.6, 2.4));
  waving(B, s.roles.partner_side, b0, b1, s.u(1.6, 2.4));
  s.end = b1 + sec(s.u(0.8, 1.3));
}

void push(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.3, 2.2));
  auto& A = s.A();
  auto& B = s.B();
  bool both = s.rng->chance(0.6);
  s.roles.actor_side = both ? -1 : s.rng->pick(2);
  s.roles.variant = both ? "two_hands" : "one_hand";
  double gap = s.u(0.55, 0.65);
  int fa = walk_to(A, sec(s.u(0.2, 0.5)), {0, 0, B.f[0].root.z - gap}, s.u(0.9, 1.3), 0.0);
  int p0 = fa - sec(0.2), hit = fa + sec(0.15), back = sec(s.u(0.7, 1.0));
  double dist = s.u(0.6, 1.0);
  move_root(B, hit, hit + back, B.f[0].root + V3{0, 0, dist}, true);
  move_root(A, hit, hit + sec(0.5), A.f[hit].root + V3{0, 0, 0.12});
  for (int t = 0; t < s.T; ++t) {
    double w = env(t, p0, hit, hit + sec(0.2), hit + sec(0.7));
    V3 chest = B.at(std::min(t, hit), 0, B.chest(), 0.12);
    for (int sd = 0; sd < 2; ++sd) {
      if (!both && sd != s.roles.actor_side) continue;
      reach(A, sd, t, chest + A.side(t, sd) * (both ? 0.13 : 0.02), elbow_down(A, t, sd), w);
    }
    A.f[t].lean_fwd = 0.25 * w;
    double hitw = t < hit ? 0 : std::exp(-(t - hit) / (0.35 * kFps)) * ease((t - hit) / 3.0);
    B.f[t].lean_fwd = -0.4 * hitw;
    for (int sd = 0; sd < 2; ++sd)  // arms fly forward and out to catch balance
      reach(B, sd, t, B.at(t, (sd == 0 ? -0.45 : 0.45), B.body.shoulder_height - 0.1, 0.3), elbow_down(B, t, sd), hitw);
  }
  B.step_time = 0.3;
  s.end = hit + back + sec(s.u(0.5, 1.0));
}

void punch(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.4, 2.0));
  auto& A = s.A();
  auto& B = s.B();
  s.roles.actor_side = s.rng->pick(2);
  int dodge = s.rng->pick(3);  // 0 to the partner's right, 1 to the left, 2 backwards
  s.roles.partner_side = dodge < 2 ? dodge : -1;
  s.roles.variant = dodge == 0 ? "dodge_right" : dodge == 1 ? "dodge_left" : "dodge_back";
  int fa = walk_to(A, sec(s.u(0.1, 0.4)), {0, 0, B.f[0].root.z - s.u(0.72, 0.82)}, s.u(0.8, 1.1), 0.0);
  int hit = fa + sec(s.u(0.3, 0.6)), p0 = hit - sec(0.18), p3 = hit + sec(0.35);
  int hs = s.roles.actor_side;
  V3 head = B.at(hit, 0, B.body.head_height - 0.05, 0.05);  // where the head was: the punch misses
  // Move the bodies first: guards are placed relative to where each body is on every frame.
  V3 b0 = B.f[p0].root;
  V3 shift = dodge == 0 ? B.side(p0, 0) * 0.18 : dodge == 1 ? B.side(p0, 1) * 0.18 : B.fwd(p0) * -0.3;
  move_root(B, p0 - 2, hit + 2, b0 + shift, true);
  move_root(B, hit + sec(0.5), hit + sec(1.1), b0 + shift * 0.3);
  move_root(A, p0, hit, A.f[p0].root + A.fwd(p0) * 0.1);
  for (int t = 0; t < s.T; ++t) {
    double g = env(t, fa - sec(0.6), fa - sec(0.2), s.T, s.T + 1);
    for (int sd = 0; sd < 2; ++sd) reach(A, sd, t, guard(A, t, sd), elbow_down(A, t, sd), g * 0.99);
    double gb = env(t, p0 - sec(0.6), p0 - sec(0.2), s.T, s.T + 1);
    for (int sd = 0; sd < 2; ++sd) reach(B, sd, t, guard(B, t, sd), elbow_down(B, t, sd), gb * 0.99);
    double w = env(t, p0, hit - 1, hit + 2, p3);
    reach(A, hs, t, head, elbow_down(A, t, hs) + A.fwd(t) * -0.5, w);
    A.f[t].twist = (hs == 0 ? 0.4 : -0.4) * w;
    A.f[t].lean_fwd = 0.1 * w;
    double d = env(t, p0 - 2, hit - 2, hit + sec(0.3), hit + sec(0.8));
    if (dodge < 2) B.f[t].lean_side = (dodge == 0 ? 0.45 : -0.45) * d;
    else B.f[t].lean_fwd = -0.35 * d;
  }
  B.step_time = 0.3;
  s.end = hit + sec(s.u(1.2, 1.6));
}

void bow(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.2, 2.2));
  auto& A = s.A();
  auto& B = s.B();
  bool together = s.rng->chance(0.35);
  s.roles.variant = together ? "together" : "in_turn";
  double depth_a = s.u(0.55, 0.95), depth_b = s.u(0.5, 0.95);
  int a0 = sec(s.u(0.4, 0.9)), b0 = together ? a0 + sec(s.u(0, 0.15)) : a0 + sec(s.u(1.2, 1.8));
  auto bowing = [&](Person& q, int t0, double depth) -> int {
    int t1 = t0 + sec(0.6), t2 = t1 + sec(s.u(0.3, 0.8)), t3 = t2 + sec(0.7);
    for (int t = 0; t < s.T; ++t) {
      double w = env(t, t0, t1, t2, t3);
      q.f[t].lean_fwd = depth * w;
      q.f[t].neck_pitch = 0.25 * w;
      for (int sd = 0; sd < 2; ++sd)  // hands slide down the thighs
        reach(q, sd, t, q.at(t, (sd == 0 ? -0.14 : 0.14), q.body.pelvis_height * (1 - 0.45 * w), 0.08 + 0.35 * w),
              q.fwd(t) * -1.0 + q.side(t, sd) * 0.3, 0.9 * w);
    }
    return t3;
  };
  int ea = bowing(A, a0, depth_a), eb = bowing(B, b0, depth_b);
  s.end = std::max(ea, eb) + sec(s.u(0.5, 1.0));
}

}  // namespace vimo::motion::synth

// Synthetic interactions with paths and props: walking side by side, following, handing over an
// object, kick and block, and dancing in a circle.
#include "vimo/motion/synth_script.h"

namespace vimo::motion::synth {
namespace {

// A walking path from the current root and yaw of q: speed ramps up and down, and an optional turn
// at `turn_rate` rad/s in the middle third. Returns the cumulative distance per frame.
std::vector<double> walk_path(Scene& s, Person& q, int f0, int f1, double speed, double turn_rate) {
  std::vector<double> dist(s.T, 0.0);
  V3 pos = q.f[f0].root;
  double yaw = q.f[f0].yaw, total = 0;
  for (int t = f0; t < s.T; ++t) {
    double v = speed * env(t, f0, f0 + sec(0.8), f1 - sec(0.8), f1);
    int third = (f1 - f0) / 3;
    if (t > f0 + third && t < f1 - third) yaw += turn_rate / kFps;
    pos = pos + heading(yaw) * (v / kFps);
    total += v / kFps;
    q.f[t].root = pos, q.f[t].yaw = yaw, dist[t] = total;
  }
  return dist;
}

}  // namespace

void walk_together(Scene& s) {
  s.resize(sec(s.u(5.0, 7.0)));
  auto& A = s.A();
  auto& B = s.B();
  double yaw0 = s.u(-0.3, 0.3);
  for (int t = 0; t < s.T; ++t) A.f[t].yaw = yaw0;
  int turn = s.rng->pick(3);  // 0 right, 1 left, 2 straight
  s.roles.direction = turn < 2 ? turn : -1;
  double rate = turn == 2 ? 0 : (turn == 1 ? 1 : -1) * s.u(0.35, 0.6);
  int f0 = sec(s.u(0.2, 0.6));
  walk_path(s, A, f0, s.T - sec(s.u(0.2, 0.6)), s.u(0.85, 1.25), rate);
  A.step_time = B.step_time = s.u(0.3, 0.36);  // brisk steps keep the strides within reach
  s.roles.partner_side = s.rng->pick(2);  // B walks on A's right (0) or left (1)
  double off = s.u(0.6, 0.85) * (s.roles.partner_side == 1 ? 1 : -1);
  bool chat = s.rng->chance(0.5);
  for (int t = 0; t < s.T; ++t) {
    B.f[t].root = A.f[t].root + A.left(t) * off, B.f[t].yaw = A.f[t].yaw;
    if (chat) {  // now and then they turn their heads to each other
      double w = env(t, sec(1.5), sec(2.0), sec(3.0), sec(3.5));
      A.f[t].neck_yaw = (off > 0 ? 0.6 : -0.6) * w, B.f[t].neck_yaw = -(off > 0 ? 0.6 : -0.6) * w;
    }
  }
}

void follow(Scene& s) {
  s.resize(sec(s.u(5.0, 7.0)));
  auto& A = s.A();
  auto& B = s.B();
  double gap = s.u(1.0, 1.6), yaw0 = s.u(-0.3, 0.3);
  for (int t = 0; t < s.T; ++t) A.f[t].yaw = yaw0;
  int turn = s.rng->pick(3);
  s.roles.direction = turn < 2 ? turn : -1;
  double rate = turn == 2 ? 0 : (turn == 1 ? 1 : -1) * s.u(0.4, 0.7);
  int f0 = sec(s.u(0.2, 0.5)), lag = sec(s.u(0.2, 0.6));
  auto dist = walk_path(s, A, f0, s.T - sec(0.3), s.u(0.85, 1.25), rate);
  A.step_time = B.step_time = s.u(0.3, 0.36);
  for (int t = 0; t < s.T; ++t) {
    double want = dist[std::max(0, t - lag)] - gap;  // arc length along A's path, `gap` behind
    if (want <= 0) {
      B.f[t].root = A.f[0].root + heading(yaw0) * want, B.f[t].yaw = yaw0;
      continue;
    }
    int k = static_cast<int>(std::lower_bound(dist.begin(), dist.end(), want) - dist.begin());
    k = std::clamp(k, 1, s.T - 1);
    double u = (want - dist[k - 1]) / std::max(1e-9, dist[k] - dist[k - 1]);
    B.f[t].root = lerp(A.f[k - 1].root, A.f[k].root, std::clamp(u, 0.0, 1.0));
    B.f[t].yaw = A.f[k - 1].yaw + wrap_angle(A.f[k].yaw - A.f[k - 1].yaw) * u;
  }
}

void hand_over(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.5, 3.0));
  auto& A = s.A();
  auto& B = s.B();
  s.roles.actor_side = s.rng->pick(2), s.roles.partner_side = s.rng->pick(2);
  int ha = s.roles.actor_side, hb = s.roles.partner_side;
  int fm = meet(s, s.u(0.8, 0.95), s.u(0.8, 1.2));
  int g0 = fm - sec(0.3), g1 = fm + sec(0.4), give = g1 + sec(s.u(0.3, 0.6)), g3 = give + sec(0.6);
  for (int t = 0; t < s.T; ++t) {
    V3 mid = lerp(A.f[t].root, B.f[t].root, 0.5);
    V3 m = V3{mid.x, 0.5 * (A.body.pelvis_height + B.body.pelvis_height) + 0.2, mid.z};
    // The giver carries the object in front, holds it out, lets go; the taker keeps it at the chest.
    V3 carry = A.at(t, (ha == 0 ? -0.12 : 0.12), A.body.pelvis_height + 0.12, 0.3);
    double out = env(t, g0, g1, give, g3);
    reach(A, ha, t, lerp(carry, m, out), elbow_down(A, t, ha), t < give ? 1.0 : 1 - ease((t - give) / 20.0));
    V3 keep = B.at(t, (hb == 0 ? -0.1 : 0.1), B.chest() - 0.05, 0.28);
    double take = env(t, g0 + sec(0.2), g1 + sec(0.1), s.T, s.T + 1);
    double home = t < give ? 0 : ease((t - give) / 15.0);
    reach(B, hb, t, lerp(m, keep, home), elbow_down(B, t, hb), take);
    B.f[t].neck_pitch = 0.3 * env(t, g0, g1, give + sec(0.5), give + sec(1.0));
    A.f[t].neck_pitch = 0.25 * out;
  }
  s.end = g3 + sec(s.u(0.8, 1.3));
}

void kick(Scene& s) {
  s.resize(sec(12));
  face_off(s, s.u(1.6, 2.2));
  auto& A = s.A();
  auto& B = s.B();
  s.roles.actor_side = s.rng->pick(2);  // kicking leg
  bool block = s.rng->chance(0.6);
  s.roles.variant = block ? "block" : "step_back";
  int fa = walk_to(A, sec(s.u(0.1, 0.3)), {0, 0, B.f[0].root.z - s.u(0.95, 1.05)}, s.u(0.8, 1.1), 0.0);
  int k0 = fa + sec(s.u(0.3, 0.5)), k1 = k0 + sec(0.25), hit = k1 + sec(0.15), k3 = hit + sec(0.25),
      k4 = k3 + sec(0.3);
  const int leg = s.roles.actor_side;
  V3 tgt = B.at(hit, 0, B.body.pelvis_height + 0.05, 0.15);
  V3 b0 = B.f[k0].root;
  if (block) move_root(B, hit, hit + sec(0.4), b0 + B.fwd(k0) * -0.15, true);
  else move_root(B, k1 - sec(0.1), hit + sec(0.2), b0 + B.fwd(k0) * -0.45, true);
  for (int t = 0; t < s.T; ++t) {
    for (int sd = 0; sd < 2; ++sd) reach(A, sd, t, guard(A, t, sd), elbow_down(A, t, sd), env(t, fa - sec(0.8), fa, s.T, s.T + 1));
    V3 knee_up = A.at(k0, (leg == 0 ? -0.1 : 0.1), 0.55 * A.body.pelvis_height, 0.35);
    V3 foot;
    if (t < k1) foot = knee_up;
    else if (t < hit) foot = lerp(knee_up, tgt, ease((t - k1) / static_cast<double>(hit - k1)));
    else if (t < k3) foot = lerp(tgt, knee_up, ease((t - hit - 2) / static_cast<double>(k3 - hit - 2)));
    else foot = knee_up;
    double w = env(t, k0, k1, k3, k4);
    A.f[t].kick[leg] = {foot, {0, 0, 1}, w};
    A.f[t].kick_pitch[leg] = -0.3;
    A.f[t].lean_fwd = -0.3 * env(t, k1, hit, hit + 2, k4);
    double g = env(t, k0 - sec(0.2), k1, hit + sec(0.4), hit + sec(0.9));
    for (int sd = 0; sd < 2; ++sd) {
      V3 low = B.at(t, (sd == 0 ? 0.05 : -0.05), B.body.pelvis_height + 0.12, 0.3);  // forearms cross
      reach(B, sd, t, block ? low : guard(B, t, sd), elbow_down(B, t, sd), g);
    }
    B.f[t].lean_fwd = (block ? 0.2 : -0.15) * g;
  }
  B.step_time = 0.3;
  s.end = k4 + sec(s.u(0.6, 1.0));
}

void dance(Scene& s) {
  s.resize(sec(s.u(5.0, 7.0)));
  double r = s.u(0.38, 0.5);
  face_off(s, 2 * r);
  auto& A = s.A();
  auto& B = s.B();
  bool hold = s.rng->chance(0.6);
  s.roles.variant = hold ? "hold_hands" : "free";
  s.roles.direction = s.rng->pick(2);  // 1: each steps to their own left
  double omega = (s.roles.direction == 1 ? -1 : 1) * s.u(1.2, 2.0), bounce = s.u(1.6, 2.2);
  int f0 = sec(s.u(0.3, 0.6)), f1 = s.T - sec(s.u(0.3, 0.6));
  V3 c{0, 0, r};
  double phi = 0, arms_f = s.u(0.8, 1.3);
  for (int t = 0; t < s.T; ++t) {
    double w = env(t, f0, f0 + sec(0.8), f1 - sec(0.8), f1);
    phi += omega * w / kFps;
    A.f[t].root = c + V3{-std::sin(phi), 0, -std::cos(phi)} * r;  // A starts at -Z of the centre
    B.f[t].root = c + V3{std::sin(phi), 0, std::cos(phi)} * r;
    A.f[t].yaw = yaw_towards(A.f[t].root, c), B.f[t].yaw = yaw_towards(B.f[t].root, c);
    for (auto* q : {&A, &B}) q->f[t].crouch = 0.035 * w * (1 - std::cos(2 * M_PI * bounce * t / kFps));
    double wa = env(t, f0 - sec(0.4), f0 + sec(0.3), f1, f1 + sec(0.5));
    for (int sd = 0; sd < 2; ++sd) {
      if (hold) {  // A's right holds B's left and A's left holds B's right
        V3 m = lerp(A.f[t].root, B.f[t].root, 0.5) + A.side(t, sd) * 0.22;
        m.y = 0.5 * (A.body.pelvis_height + B.body.pelvis_height) + 0.1;
        reach(A, sd, t, m, elbow_down(A, t, sd), wa);
        reach(B, 1 - sd, t, m, elbow_down(B, t, 1 - sd), wa);
      } else {
        for (auto* q : {&A, &B}) {
          double ph = std::sin(2 * M_PI * arms_f * t / kFps + sd * M_PI);
          V3 up = q->shoulder(t, sd) + q->side(t, sd) * (0.25 + 0.1 * ph) + V3{0, 0.3 + 0.12 * ph, 0} + q->fwd(t) * 0.1;
          reach(*q, sd, t, up, q->side(t, sd) + V3{0, -0.7, 0}, wa);
        }
      }
    }
  }
  A.step_time = B.step_time = 0.3;
}

}  // namespace vimo::motion::synth

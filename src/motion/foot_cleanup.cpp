// Foot-skate cleanup: contact spans from the contact channels, a held toe position per span faded in
// and out, and the knee re-solved by two-bone IK so the leg's bones keep their lengths.
#include "vimo/motion/foot_cleanup.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "vimo/core/error.h"
#include "vimo/motion/features.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth_body.h"

namespace vimo::motion {
namespace {

using synth::dot;
using synth::norm;
using synth::V3;

struct Leg {
  int hip, knee, ankle, toe, ankle_channel, toe_channel;
};
// Contact channels in order l_ankle, l_foot, r_ankle, r_foot (features.h).
constexpr std::array<Leg, 2> kLegs = {Leg{kLeftHip, kLeftKnee, kLeftAnkle, kLeftFoot, 0, 1},
                                      Leg{kRightHip, kRightKnee, kRightAnkle, kRightFoot, 2, 3}};

// The horizontal move of the toe at every frame: inside a span, from the toe to the span's mean
// position; in the blend frames around it, the boundary move scaled down linearly. [T] pairs (dx, dz).
std::vector<std::array<double, 2>> hold_moves(const std::vector<char>& on, const std::vector<V3>& toe,
                                              const FootCleanupOptions& o, int64_t* spans) {
  const int64_t T = static_cast<int64_t>(on.size());
  std::vector<std::array<double, 2>> move(static_cast<size_t>(T), {0.0, 0.0});
  std::vector<double> weight(static_cast<size_t>(T), 0.0);
  for (int64_t s = 0; s < T;) {
    if (!on[static_cast<size_t>(s)]) {
      ++s;
      continue;
    }
    int64_t e = s;
    while (e < T && on[static_cast<size_t>(e)]) ++e;
    if (e - s >= o.min_frames) {
      ++*spans;
      double mx = 0, mz = 0;
      for (int64_t t = s; t < e; ++t) mx += toe[static_cast<size_t>(t)].x, mz += toe[static_cast<size_t>(t)].z;
      mx /= static_cast<double>(e - s), mz /= static_cast<double>(e - s);
      for (int64_t t = s; t < e; ++t) {
        move[static_cast<size_t>(t)] = {mx - toe[static_cast<size_t>(t)].x, mz - toe[static_cast<size_t>(t)].z};
        weight[static_cast<size_t>(t)] = 2;  // above any blend weight: spans never get overwritten
      }
      for (int d = 1; d <= o.blend_frames; ++d) {
        const double w = 1.0 - static_cast<double>(d) / (o.blend_frames + 1);
        for (auto [t, edge] : {std::pair<int64_t, int64_t>{s - d, s}, std::pair<int64_t, int64_t>{e - 1 + d, e - 1}}) {
          if (t < 0 || t >= T || w <= weight[static_cast<size_t>(t)]) continue;
          weight[static_cast<size_t>(t)] = w;
          move[static_cast<size_t>(t)] = {w * move[static_cast<size_t>(edge)][0], w * move[static_cast<size_t>(edge)][1]};
        }
      }
    }
    s = e;
  }
  return move;
}

}  // namespace

torch::Tensor clean_foot_contacts(const torch::Tensor& features, const FootCleanupOptions& o, FootCleanupStats* stats) {
  VIMO_CHECK(features.defined() && (features.dim() == 2 || features.dim() == 3) && features.size(-1) == kFeatureDim,
             "foot cleanup: expected features [T, P, 262] or [T, 262], got " +
                 (features.defined() ? c10::str(features.sizes()) : std::string("an undefined tensor")));
  VIMO_CHECK(torch::isfinite(features).all().item<bool>(), "foot cleanup: the features hold NaN or inf values");
  VIMO_CHECK(o.blend_frames >= 0 && o.min_frames >= 1, "foot cleanup: blend_frames must be >= 0 and min_frames >= 1");
  auto f = (features.dim() == 2 ? features.unsqueeze(1) : features).to(torch::kFloat64).contiguous().clone();
  const int64_t T = f.size(0), P = f.size(1);
  FootCleanupStats st;
  auto acc = f.accessor<double, 3>();
  auto pos = [&](int64_t t, int64_t p, int j) {
    return V3{acc[t][p][kPosChannels + 3 * j], acc[t][p][kPosChannels + 3 * j + 1], acc[t][p][kPosChannels + 3 * j + 2]};
  };
  auto set = [&](int64_t t, int64_t p, int j, V3 v) {
    acc[t][p][kPosChannels + 3 * j] = v.x, acc[t][p][kPosChannels + 3 * j + 1] = v.y, acc[t][p][kPosChannels + 3 * j + 2] = v.z;
  };
  for (int64_t p = 0; p < P; ++p) {
    for (const auto& leg : kLegs) {
      std::vector<char> on(static_cast<size_t>(T));
      std::vector<V3> toe(static_cast<size_t>(T));
      for (int64_t t = 0; t < T; ++t) {
        on[static_cast<size_t>(t)] = acc[t][p][kContactChannels + leg.ankle_channel] > o.contact_threshold ||
                                     acc[t][p][kContactChannels + leg.toe_channel] > o.contact_threshold;
        toe[static_cast<size_t>(t)] = pos(t, p, leg.toe);
      }
      const auto move = hold_moves(on, toe, o, &st.spans);
      auto moved = [&](int64_t t) { return move[static_cast<size_t>(t)][0] != 0 || move[static_cast<size_t>(t)][1] != 0; };
      for (int64_t t = 0; t < T; ++t) {
        if (!moved(t)) continue;
        const auto& mv = move[static_cast<size_t>(t)];
        const V3 H = pos(t, p, leg.hip), K = pos(t, p, leg.knee), A = pos(t, p, leg.ankle), F = pos(t, p, leg.toe);
        const double l1 = norm(K - H), l2 = norm(A - K);
        V3 target = A + V3{mv[0], 0, mv[1]};
        V3 D = target - H;
        double d = norm(D);
        const double reach = (l1 + l2) * (1 - 1e-6), fold = std::abs(l1 - l2) * (1 + 1e-6) + 1e-9;
        if (d > reach || d < fold) {
          ++st.unreachable;
          const double want = d > reach ? reach : fold;
          D = d > 1e-12 ? D * (want / d) : V3{0, -want, 0};
          d = want;
          target = H + D;
        }
        const V3 u = D * (1.0 / d);
        // The bend plane: the knee's own side of the hip-ankle line, else the way the foot points.
        V3 side = (K - H) - u * dot(K - H, u);
        if (norm(side) < 1e-9) side = (F - A) - u * dot(F - A, u);
        if (norm(side) < 1e-9) side = V3{0, 0, 1} - u * u.z;
        const V3 n = side * (1.0 / norm(side));
        const double x = (l1 * l1 - l2 * l2 + d * d) / (2 * d), r = std::sqrt(std::max(0.0, l1 * l1 - x * x));
        const V3 shift = target - A;
        st.max_shift_m = std::max(st.max_shift_m, std::hypot(shift.x, shift.z));
        set(t, p, leg.knee, H + u * x + n * r);
        set(t, p, leg.ankle, target);
        set(t, p, leg.toe, F + shift);
      }
      // Velocities (next frame minus this frame) where either frame moved; the last frame keeps its own.
      for (int64_t t = 0; t + 1 < T; ++t)
        if (moved(t) || moved(t + 1))
          for (int j : {leg.knee, leg.ankle, leg.toe})
            for (int c = 0; c < 3; ++c)
              acc[t][p][kVelChannels + 3 * j + c] = acc[t + 1][p][kPosChannels + 3 * j + c] - acc[t][p][kPosChannels + 3 * j + c];
    }
  }
  if (stats) *stats = st;
  auto out = f.to(features.scalar_type());
  return features.dim() == 2 ? out.squeeze(1) : out;
}

}  // namespace vimo::motion

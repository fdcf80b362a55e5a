// Group composition by iterative prompting: t2m for the first pair, then a reaction per further person,
// placed about its anchor with an inter-person penetration check.
#include "vimo/vim/group.h"

#include <algorithm>
#include <cmath>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/data/augment.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/motion/features.h"

namespace vimo::vim {
namespace {

// One person's features [T, 1, 262] cut or held (last pose, zero velocity) to `frames` frames.
torch::Tensor fit_length(const torch::Tensor& x, int64_t frames) {
  if (x.size(0) >= frames) return x.narrow(0, 0, frames).clone();
  auto last = x.narrow(0, x.size(0) - 1, 1).clone();
  last.narrow(2, motion::kVelChannels, 66).zero_();
  return torch::cat({x, last.expand({frames - x.size(0), x.size(1), x.size(2)})}, 0);
}

double worst_overlap(const torch::Tensor& joints, const std::vector<torch::Tensor>& placed) {  // [T, 22, 3] each
  double worst = 0;
  for (const auto& q : placed) worst = std::max(worst, eval::penetration(joints, q).ratio);
  return worst;
}

}  // namespace

GroupResult generate_group(VimModel& m, const GroupOptions& o, const GenerateSettings& s) {
  const int N = o.persons;
  VIMO_CHECK(N >= 2, "group: --persons must be at least 2 (one person: --task t2m_single), got " + std::to_string(N));
  VIMO_CHECK(N <= o.max_persons, "group: --persons " + std::to_string(N) + " is more than the configured maximum of " +
                                     std::to_string(o.max_persons) + " (raise --max-persons, at most " +
                                     std::to_string(motion::kMaxGroupPersons) + ")");
  VIMO_CHECK(o.max_persons <= motion::kMaxGroupPersons,
             "group: --max-persons must be at most " + std::to_string(motion::kMaxGroupPersons));
  VIMO_CHECK(!o.texts.empty() && !o.texts[0].empty(), "group: give the interaction as --text \"...\"");
  VIMO_CHECK(o.layout == "star" || o.layout == "chain", "group: --layout must be star or chain, got '" + o.layout + "'");
  VIMO_CHECK(o.anchors.empty() || static_cast<int>(o.anchors.size()) == N - 2,
             "group: give one anchor per person after the first pair (" + std::to_string(N - 2) + "), got " +
                 std::to_string(o.anchors.size()));
  VIMO_CHECK(o.tries >= 1 && !o.angles_deg.empty(), "group: tries must be at least 1 and angles not empty");
  for (size_t i = 0; i < o.anchors.size(); ++i)
    VIMO_CHECK(o.anchors[i] >= 0 && o.anchors[i] < static_cast<int>(i) + 2,
               "group: person " + std::to_string(i + 3) + "'s anchor must be an earlier person (1.." + std::to_string(i + 2) +
                   " as --anchor 0.." + std::to_string(i + 1) + "), got " + std::to_string(o.anchors[i]));
  m.check_task(Task::kT2M);
  if (N > 2) m.check_task(Task::kA2B);
  const int64_t Q = m.spec().layers;
  auto text_for = [&](int k) { return o.texts[static_cast<size_t>(std::min<int>(k - 1, static_cast<int>(o.texts.size()) - 1))]; };

  // The first pair: the least overlapping of `tries` samples.
  Request r0;
  r0.task = Task::kT2M;
  r0.caption = o.texts[0];
  auto pairs = m.generate(std::vector<Request>(static_cast<size_t>(o.tries), r0), s);
  torch::Tensor pair;
  GroupResult out;
  out.pair_penetration = 2;
  for (const auto& x : pairs) {
    if (!x.codes.defined() || x.codes.size(0) == 0) continue;
    auto f = m.decode_motion(x.codes.narrow(2, 0, Q));  // [T, 2, 262]
    auto j = motion::features_to_joints(f);
    const double pen = eval::penetration(j.select(1, 0), j.select(1, 1)).ratio;
    if (pen < out.pair_penetration) out.pair_penetration = pen, pair = f;
  }
  VIMO_CHECK(pair.defined(), "group: the model closed every one of the " + std::to_string(o.tries) +
                                 " first-pair motions at once (no frame); train the run longer or raise --tries");
  const int64_t T = pair.size(0);
  std::vector<torch::Tensor> feats = {pair.narrow(1, 0, 1), pair.narrow(1, 1, 1)};  // [T, 1, 262] each
  std::vector<torch::Tensor> joints = {motion::features_to_joints(feats[0]).select(1, 0),
                                       motion::features_to_joints(feats[1]).select(1, 0)};

  for (int k = 2; k < N; ++k) {
    const int a = o.anchors.empty() ? (o.layout == "star" ? 0 : k - 1) : o.anchors[static_cast<size_t>(k - 2)];
    // The anchor as the actor in its own canonical frame, the reactor generated beside it.
    const auto to_canon = data::canonical_transform(feats[static_cast<size_t>(a)], 0, 0);
    auto actor = data::apply_transform(feats[static_cast<size_t>(a)], to_canon);
    auto codes = m.encode_motion(actor);  // [T', 1, Q]
    Request r;
    r.task = Task::kA2B;
    r.caption = text_for(k);
    r.codes = torch::cat({codes, torch::zeros_like(codes)}, 1);
    GenerateSettings g = s;
    g.max_motion_steps = std::max<int64_t>(codes.size(0), 1);
    g.min_motion_steps = g.max_motion_steps;  // the reactor lasts as long as its anchor
    auto res = m.generate(std::vector<Request>(static_cast<size_t>(o.tries), r), g);
    const auto from_canon = to_canon.inverse();
    const auto root = feats[static_cast<size_t>(a)][0][0];  // the anchor's frame-0 pelvis: [262]
    const double ax = root[motion::kPosChannels].item<double>(), az = root[motion::kPosChannels + 2].item<double>();
    GroupPlacement best;
    best.person = k, best.anchor = a, best.penetration = 2;
    torch::Tensor best_f, best_j;
    for (size_t i = 0; i < res.size() && !best.accepted; ++i) {
      const auto& x = res[i];
      if (!x.codes.defined() || x.codes.size(0) == 0) continue;
      auto react = m.decode_motion(x.codes.narrow(2, 0, Q));  // the reactor alone: [T_r, 1, 262]
      react = fit_length(data::apply_transform(react, from_canon), T);
      for (double deg : o.angles_deg) {
        auto f = data::apply_transform(react, data::PlanarTransform::rotation_about(deg * M_PI / 180.0, ax, az));
        auto j = motion::features_to_joints(f).select(1, 0);
        const double pen = worst_overlap(j, joints);
        if (pen < best.penetration) {
          best.sample = static_cast<int>(i), best.angle_deg = deg, best.penetration = pen;
          best_f = f, best_j = j;
        }
        if (pen <= o.max_penetration) {
          best.accepted = true;
          break;
        }
      }
    }
    VIMO_CHECK(best_f.defined(), "group: the model closed every one of the " + std::to_string(o.tries) + " motions of person " +
                                     std::to_string(k) + " at once (no frame); train the run longer or raise --tries");
    if (!best.accepted)
      log::warn("group: no placement of person ", k, " is clear of the others (", o.tries, " samples x ",
                o.angles_deg.size(), " turns); kept the least overlapping (ratio ", best.penetration, ")");
    feats.push_back(best_f);
    joints.push_back(best_j);
    out.placements.push_back(best);
  }
  out.features = data::canonicalize(torch::cat(feats, 1));
  if (o.foot_cleanup) out.features = motion::clean_foot_contacts(out.features, {}, &out.foot_cleanup);
  return out;
}

}  // namespace vimo::vim

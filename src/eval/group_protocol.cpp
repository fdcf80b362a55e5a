// The group protocol: compose synthetic group scenes with a two-person run, score pairs with the pair
// evaluator and whole scenes by penetration, foot skating and contact timing, beside the ground truth.
#include "vimo/eval/group_protocol.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/augment.h"
#include "vimo/eval/evaluator.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/eval/protocols.h"
#include "vimo/motion/features.h"
#include "vimo/motion/foot_cleanup.h"
#include "vimo/motion/skeleton.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace vimo::eval {

int64_t contact_onset(const torch::Tensor& joints, const motion::GroupContact& c, double radius_m) {
  VIMO_CHECK(joints.dim() == 4 && joints.size(2) == motion::kNumJoints && joints.size(3) == 3 &&
                 std::max(c.a, c.b) < joints.size(1),
             "contact_onset: joints must be [T, N, 22, 3] holding persons " + std::to_string(c.a) + " and " +
                 std::to_string(c.b) + ", got " + c10::str(joints.sizes()));
  auto d = (joints.select(1, c.a).select(1, c.joint_a) - joints.select(1, c.b).select(1, c.joint_b)).norm(2, -1);  // [T]
  auto hit = (d < radius_m).nonzero();
  return hit.numel() ? hit[0][0].item<int64_t>() : -1;
}

double group_penetration(const torch::Tensor& joints_in, bool forearms) {
  VIMO_CHECK(joints_in.dim() == 4 && joints_in.size(1) >= 2 && joints_in.size(2) == motion::kNumJoints,
             "group_penetration: joints must be [T, N >= 2, 22, 3]");
  auto joints = joints_in;
  if (!forearms) {
    joints = joints_in.clone();
    joints.select(2, motion::kLeftWrist).copy_(joints_in.select(2, motion::kLeftElbow));
    joints.select(2, motion::kRightWrist).copy_(joints_in.select(2, motion::kRightElbow));
  }
  double sum = 0;
  int n = 0;
  for (int64_t i = 0; i < joints.size(1); ++i)
    for (int64_t j = i + 1; j < joints.size(1); ++j, ++n) sum += penetration(joints.select(1, i), joints.select(1, j)).ratio;
  return sum / n;
}

namespace {

ojson interval(const std::vector<double>& v) {
  const auto m = mean_interval(v);
  return {{"mean", m.mean}, {"ci95", m.ci95}};
}

// The pair (anchor, other) of a scene, canonical to the anchor, normalized for the evaluator.
torch::Tensor pair_clip(const LoadedEvaluator& ev, const torch::Tensor& feats, const motion::GroupPair& p) {
  auto pair = feats.index_select(1, torch::tensor({static_cast<int64_t>(p.anchor), static_cast<int64_t>(p.other)}));
  return ev.normalizer.normalize(data::canonicalize(pair));
}

struct SceneScores {
  std::vector<double> penetration, body_penetration, skating;
  std::vector<int64_t> onsets;  // per scripted contact, in scene order
};

SceneScores scene_scores(const std::vector<torch::Tensor>& feats, const std::vector<motion::GroupClip>& scenes, double radius) {
  SceneScores s;
  for (size_t i = 0; i < feats.size(); ++i) {
    auto j = motion::features_to_joints(feats[i]).to(torch::kFloat64);  // [T, N, 22, 3]
    s.penetration.push_back(group_penetration(j));
    s.body_penetration.push_back(group_penetration(j, false));
    s.skating.push_back(foot_skating_ratio(j));
    for (const auto& c : scenes[i].contacts) s.onsets.push_back(contact_onset(j, c, radius));
  }
  return s;
}

}  // namespace

nlohmann::ordered_json evaluate_group(const GroupProtocolOptions& o) {
  VIMO_CHECK(o.persons >= 3 && o.persons <= o.group.max_persons,
             "eval group: --persons must be 3.." + std::to_string(o.group.max_persons) + ", got " + std::to_string(o.persons));
  VIMO_CHECK(o.scenes >= 2 && o.replications >= 1, "eval group: --scenes must be at least 2 and --replications at least 1");
  const auto dev = core::resolve_device("auto");
  auto model = vim::VimModel::load_run(o.run, dev);
  model.check_task(vim::Task::kT2M);
  model.check_task(vim::Task::kA2B);
  auto ev = load_evaluator(o.evaluator, o.clip_vocab, dev);
  VIMO_CHECK(ev.normalizer.defined(), "evaluator '" + ev.path + "' has no stats.safetensors beside it");
  VIMO_CHECK(ev.model->options().motion_features == motion::kFeatureDim,
             "evaluator '" + ev.path + "' reads " + std::to_string(ev.model->options().motion_features) +
                 " features per person; the group protocol gives it InterHuman's 262-d layout");

  // The ground-truth scenes and an independent reference set (FID's real side).
  std::vector<motion::GroupClip> scenes, refs;
  std::vector<torch::Tensor> gt_feats, ref_feats;
  for (int64_t i = 0; i < o.scenes; ++i) {
    scenes.push_back(motion::synth_group(o.scene_seed, i, o.persons));
    gt_feats.push_back(motion::group_features(scenes.back()));
    refs.push_back(motion::synth_group(o.scene_seed + 1, i, o.persons));
    ref_feats.push_back(motion::group_features(refs.back()));
  }

  // Generation, one scene per cached batch.
  const fs::path eval_dir = fs::path(o.run) / "eval";
  const fs::path dir = eval_dir / "samples" / ("group" + std::to_string(o.persons));
  std::string what = "group" + std::to_string(o.persons) + " scenes " + std::to_string(o.scene_seed) + " tries " +
                     std::to_string(o.group.tries) + " max_pen " + std::to_string(o.group.max_penetration) + " angles";
  for (double a : o.group.angles_deg) what += " " + std::to_string(a);
  const std::string key = sample_key(o.run, what, o.sampling, static_cast<size_t>(o.scenes), 1);
  std::vector<torch::Tensor> gen(static_cast<size_t>(o.scenes));
  std::vector<double> unplaced;
  const auto t0 = std::chrono::steady_clock::now();
  cached_batches(
      dir, key, o.scenes, 1, "group scenes",
      [&](int64_t i, int64_t) {
        const auto& sc = scenes[static_cast<size_t>(i)];
        vim::GroupOptions g = o.group;
        g.persons = o.persons;
        g.foot_cleanup = false;  // the cache holds the scenes as decoded; the cleanup is applied below
        g.texts.clear();
        g.anchors.clear();
        for (const auto& p : sc.pairs) g.texts.push_back(p.captions.at(0));
        for (size_t k = 1; k < sc.pairs.size(); ++k) g.anchors.push_back(sc.pairs[k].anchor);
        auto s = o.sampling;
        s.seed += static_cast<uint64_t>(i);
        auto res = vim::generate_group(model, g, s);
        const std::string file = "scene_" + std::to_string(i) + ".npy";
        core::save_npy((dir / file).string(), res.features);
        ojson item = {{"file", file}, {"pair_penetration", res.pair_penetration}, {"placements", ojson::array()}};
        for (const auto& p : res.placements)
          item["placements"].push_back({{"person", p.person}, {"anchor", p.anchor}, {"sample", p.sample},
                                        {"angle_deg", p.angle_deg}, {"penetration", p.penetration}, {"accepted", p.accepted}});
        return nlohmann::json::array({item});
      },
      [&](int64_t i, const nlohmann::json& j) {
        const fs::path f = dir / j.at("file").get<std::string>();
        VIMO_CHECK(fs::exists(f), "eval group: cached scene '" + f.string() + "' is missing; delete '" + dir.string() +
                                      "' to generate again");
        gen[static_cast<size_t>(i)] = core::load_npy(f.string()).to(torch::kFloat32);
        for (const auto& p : j.at("placements")) unplaced.push_back(p.at("accepted").get<bool>() ? 0.0 : 1.0);
      });
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The scenes scored: the decoded ones with their planted feet held (as `vimo generate --task group`), or as decoded.
  std::vector<torch::Tensor> decoded = gen;
  motion::FootCleanupStats held;
  if (o.group.foot_cleanup)
    for (auto& x : gen) {
      motion::FootCleanupStats st;
      x = motion::clean_foot_contacts(x, {}, &st);
      held.spans += st.spans, held.unreachable += st.unreachable, held.max_shift_m = std::max(held.max_shift_m, st.max_shift_m);
    }

  // Per-pair embeddings: generated, ground truth, reference; captions of every pair.
  CaptionedSplit pairs;
  std::vector<torch::Tensor> gen_pairs, ref_pairs;
  for (size_t i = 0; i < scenes.size(); ++i) {
    for (const auto& p : scenes[i].pairs) {
      pairs.ids.push_back(scenes[i].id + ":" + std::to_string(p.anchor) + "-" + std::to_string(p.other));
      pairs.clips.push_back(pair_clip(ev, gt_feats[i], p));
      pairs.captions.push_back(p.captions);
      gen_pairs.push_back(pair_clip(ev, gen[i], p));
    }
    for (const auto& p : refs[i].pairs) ref_pairs.push_back(pair_clip(ev, ref_feats[i], p));
  }
  const int64_t M = static_cast<int64_t>(pairs.clips.size()), R = o.replications;
  auto p = metric_protocol(o.protocol);
  p.batch_size = std::min<int64_t>(o.batch_size > 0 ? o.batch_size : 32, M);
  p = fit_protocol(p, M);
  auto text = replicated_caption_embeddings(ev, pairs, R, o.seed);
  auto gt_motion = embed_clips(ev.model, pairs.clips), ref_motion = embed_clips(ev.model, ref_pairs);
  auto gen_motion = embed_clips(ev.model, gen_pairs);

  auto j = protocol_json("group", "synthetic", p, R);
  j["persons"] = o.persons;
  j["scenes"] = o.scenes;
  j["pairs"] = M;
  const auto gt_s = scene_scores(gt_feats, scenes, o.contact_radius_m);
  const auto gen_s2 = scene_scores(gen, scenes, o.contact_radius_m);
  // Ground truth: the real pairs against the reference set, its scenes' own penetration and skating.
  auto gt_row = protocol_row(p, score_replications(EmbeddingSet{text, gt_motion, ref_motion, torch::Tensor()}, p, R, o.seed));
  gt_row["penetration"] = interval(gt_s.penetration);
  gt_row["body_penetration"] = interval(gt_s.body_penetration);
  gt_row["foot_skating"] = interval(gt_s.skating);
  std::vector<double> found;
  for (auto t : gt_s.onsets) found.push_back(t >= 0 ? 1.0 : 0.0);
  gt_row["contact_found"] = interval(found);
  auto row = protocol_row(p, score_replications(EmbeddingSet{text, gen_motion, ref_motion, torch::Tensor()}, p, R, o.seed));
  row["penetration"] = interval(gen_s2.penetration);
  row["body_penetration"] = interval(gen_s2.body_penetration);
  row["foot_skating"] = interval(gen_s2.skating);
  if (o.group.foot_cleanup) {
    std::vector<double> raw;
    for (const auto& x : decoded) raw.push_back(foot_skating_ratio(motion::features_to_joints(x).to(torch::kFloat64)));
    row["foot_skating_uncleaned"] = interval(raw);
  }
  std::vector<double> err, hit;
  for (size_t k = 0; k < gt_s.onsets.size(); ++k) {
    hit.push_back(gen_s2.onsets[k] >= 0 ? 1.0 : 0.0);
    if (gen_s2.onsets[k] >= 0 && gt_s.onsets[k] >= 0)
      err.push_back(std::abs(static_cast<double>(gen_s2.onsets[k] - gt_s.onsets[k])) / motion::kFps);
  }
  row["contact_found"] = interval(hit);
  if (!err.empty()) row["contact_timing_error_s"] = interval(err);
  if (!unplaced.empty()) row["unplaced"] = interval(unplaced);
  j["rows"]["gt"] = gt_row;
  j["rows"]["model"] = row;
  auto ratio = [&](const char* k) {
    const double g = j["rows"]["gt"][k]["mean"].get<double>();
    return g > 0 ? j["rows"]["model"][k]["mean"].get<double>() / g : 0.0;
  };
  j["model_over_gt"] = {{"penetration", ratio("penetration")}, {"foot_skating", ratio("foot_skating")}};
  j["generation_seconds"] = gen_s;
  j["foot_cleanup"] = o.group.foot_cleanup ? ojson{{"spans", held.spans}, {"unreachable_frames", held.unreachable},
                                                   {"max_shift_m", held.max_shift_m}}
                                           : ojson(false);

  const std::string out = o.out.empty() ? (eval_dir / ("group" + std::to_string(o.persons) + "_synthetic.json")).string() : o.out;
  fs::create_directories(fs::path(out).parent_path().empty() ? fs::path(".") : fs::path(out).parent_path());
  write_protocol_report(out, j);
  return j;
}

}  // namespace vimo::eval

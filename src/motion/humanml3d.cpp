// HumanML3D 263-d features: joint recovery, conversion to the 262-d format, and the dataset reader.
// Layout and recovery follow HumanML3D's motion_representation / recover_from_ric (Guo et al. 2022).
#include "vimo/motion/humanml3d.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/rotation.h"

namespace vimo::motion {

torch::Tensor humanml3d_recover_joints(const torch::Tensor& features, const std::string& name) {
  VIMO_CHECK(features.dim() == 2 && features.size(1) == kHumanML3DDim,
             name + ": HumanML3D features must be [T, 263], got " + c10::str(features.sizes()));
  auto f = features.to(torch::kFloat64);
  check_finite(f, name);
  int64_t t = f.size(0);
  // The root's heading: the per-frame velocities (half-angles of a Y quaternion) summed from frame 0.
  auto ang = torch::zeros({t}, torch::kFloat64);
  if (t > 1) ang.narrow(0, 1, t - 1).copy_(torch::cumsum(f.select(1, 0).narrow(0, 0, t - 1), 0));
  auto undo = rotation_about_y(-2 * ang);  // [T, 3, 3]: the inverse of the root's heading rotation
  auto step = torch::zeros({t, 3}, torch::kFloat64);
  if (t > 1) {
    step.narrow(0, 1, t - 1).select(1, 0).copy_(f.select(1, 1).narrow(0, 0, t - 1));
    step.narrow(0, 1, t - 1).select(1, 2).copy_(f.select(1, 2).narrow(0, 0, t - 1));
  }
  auto root = torch::cumsum(undo.matmul(step.unsqueeze(-1)).squeeze(-1), 0);
  root.select(1, 1).copy_(f.select(1, 3));
  auto local = f.narrow(1, 4, 63).reshape({t, 21, 3});
  auto joints = local.matmul(undo.transpose(1, 2));  // row vectors: x R^T
  joints.select(2, 0) += root.select(1, 0).unsqueeze(1);
  joints.select(2, 2) += root.select(1, 2).unsqueeze(1);
  return torch::cat({root.unsqueeze(1), joints}, 1).to(torch::kFloat32);
}

Clip humanml3d_to_clip(const torch::Tensor& features, const std::string& id, std::vector<std::string> captions) {
  auto joints = humanml3d_recover_joints(features, id);
  FeatureOptions o;
  o.fps = kHumanML3DFps;
  o.name = id;
  return Clip{id, joints_to_features({joints}, {}, o), std::move(captions)};
}

namespace {

struct Caption {
  std::string text;
  double from = 0, to = 0;
};

Caption parse_caption(const std::string& line, const std::string& file) {
  std::vector<std::string> parts;
  std::stringstream ss(line);
  for (std::string p; std::getline(ss, p, '#');) parts.push_back(p);
  VIMO_CHECK(!parts.empty() && !io_detail::trim(parts[0]).empty(), file + ": empty caption line '" + line + "'");
  Caption c;
  c.text = io_detail::trim(parts[0]);
  auto num = [](const std::string& s) {
    try {
      double v = std::stod(s);
      return std::isnan(v) ? 0.0 : v;
    } catch (...) {
      return 0.0;
    }
  };
  if (parts.size() >= 4) c.from = num(parts[2]), c.to = num(parts[3]);
  return c;
}

}  // namespace

std::vector<Clip> read_humanml3d(const std::string& root, const std::string& split, const ReadOptions& opts,
                                 ReadStats* stats_out) {
  namespace fs = std::filesystem;
  std::string list = root + "/" + split + ".txt";
  VIMO_CHECK(fs::is_directory(root + "/new_joint_vecs"),
             root + ": no new_joint_vecs/ folder; point the root at a HumanML3D folder holding new_joint_vecs/, texts/ and " +
                 split + ".txt");
  VIMO_CHECK(fs::exists(list), root + ": split list " + list + " is missing; the whole " + split +
                                   " split is absent (HumanML3D ships train.txt, val.txt, test.txt)");
  auto ids = io_detail::read_lines(list);
  ReadStats stats;
  std::vector<Clip> out;
  for (const auto& id : ids) {
    if (opts.limit > 0 && static_cast<int>(out.size()) >= opts.limit) break;
    std::string npy = root + "/new_joint_vecs/" + id + ".npy", txt = root + "/texts/" + id + ".txt";
    if (!fs::exists(npy) || !fs::exists(txt)) {
      ++stats.missing;
      stats.missing_ids.push_back(id + (fs::exists(npy) ? " (texts/" : " (new_joint_vecs/") + id +
                                  (fs::exists(npy) ? ".txt)" : ".npy)"));
      continue;
    }
    auto feats = core::load_npy(npy);
    VIMO_CHECK(feats.dim() == 2 && feats.size(1) == kHumanML3DDim,
               npy + ": expected [T, 263] HumanML3D features, got " + c10::str(feats.sizes()));
    // Whole-motion captions share one clip; timed captions each cut their own part.
    std::vector<std::string> whole;
    std::map<std::pair<double, double>, std::vector<std::string>> parts;
    for (const auto& line : io_detail::read_lines(txt)) {
      auto c = parse_caption(line, txt);
      if (c.from == 0 && c.to == 0) whole.push_back(c.text);
      else parts[{c.from, c.to}].push_back(c.text);
    }
    auto add = [&](const torch::Tensor& f, const std::string& cid, std::vector<std::string> caps) {
      if (f.size(0) < 2) {
        ++stats.too_short;
        return;
      }
      auto clip = humanml3d_to_clip(f, cid, std::move(caps));
      if (io_detail::accept_length(clip, opts, stats)) out.push_back(std::move(clip));
    };
    if (!whole.empty() || parts.empty()) add(feats, id, whole);
    for (auto& [span, caps] : parts) {
      int64_t a = static_cast<int64_t>(span.first * kHumanML3DFps), b = static_cast<int64_t>(span.second * kHumanML3DFps);
      a = std::clamp<int64_t>(a, 0, feats.size(0));
      b = std::clamp<int64_t>(b, a, feats.size(0));
      std::ostringstream cid;
      cid << id << "@" << span.first << "-" << span.second;
      add(feats.narrow(0, a, b - a), cid.str(), caps);
    }
  }
  io_detail::report_missing(root + " (" + split + ")", stats, ids.size(), opts);
  log::info("humanml3d ", root, " ", split, ": ", stats.summary());
  if (stats_out) *stats_out = stats;
  return out;
}

}  // namespace vimo::motion

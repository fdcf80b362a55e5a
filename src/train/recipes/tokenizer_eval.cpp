// Stage-1 evaluation: whole clips through the RQ-VAE; MPJPE (all and per number of layers),
// per-group feature error, codebook usage and perplexity.
#include <cmath>
#include <cstdio>

#include "vimo/core/error.h"
#include "vimo/core/process_group.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/motion/features.h"
#include "vimo/train/recipes/tokenizer.h"

namespace vimo::train {
namespace {

std::string f2(double v, const char* f = "%.2f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

TokenizerEvalResult evaluate_tokenizer(tokenizer::Rqvae& model, const std::vector<torch::Tensor>& clips, torch::Device dev,
                                       bool per_layer) {
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const auto& o = model->options();
  const int64_t Q = o.num_quantizers, K = o.codebook_size, ds = o.downsample();
  TokenizerEvalResult r;
  std::vector<double> layer_err(Q, 0.0);
  double err = 0, pa_err = 0;
  std::map<std::string, double> group;
  const std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> groups = {
      {"positions", {motion::kPosChannels, motion::kVelChannels}},
      {"velocities", {motion::kVelChannels, motion::kRotChannels}},
      {"rotations", {motion::kRotChannels, motion::kContactChannels}},
      {"contacts", {motion::kContactChannels, motion::kFeatureDim}}};
  auto counts = torch::zeros({Q, K}, torch::kDouble);
  int64_t joint_frames = 0;
  for (const auto& clip : clips) {
    const int64_t T = clip.size(0) / ds * ds;
    if (T == 0) continue;
    auto x = clip.narrow(0, 0, T).permute({1, 0, 2}).to(dev, torch::kFloat);  // [P, T, F]
    auto out = model->forward(x);
    auto gj = motion::features_to_joints(x);  // [P, T, 22, 3]
    const auto rj = motion::features_to_joints(out.recon);
    const int64_t joints = x.size(0) * T * motion::kNumJoints;
    const double n = static_cast<double>(joints);
    // The shared metrics (eval/motion_metrics.h) per clip, weighted by its joints.
    err += eval::mpjpe_mm(rj, gj) * n;
    pa_err += eval::pa_mpjpe_mm(rj.reshape({-1, motion::kNumJoints, 3}), gj.reshape({-1, motion::kNumJoints, 3})) * n;
    joint_frames += joints;
    if (o.feature_dim == motion::kFeatureDim)
      for (const auto& [name, rg] : groups)
        group[name] += (out.recon - x).narrow(-1, rg.first, rg.second - rg.first).abs().mean().item<double>() *
                       x.size(0) * T;
    auto idx = out.indices.reshape({-1, Q}).to(torch::kCPU);
    for (int64_t q = 0; q < Q; ++q)
      counts[q].index_add_(0, idx.select(1, q), torch::ones({idx.size(0)}, torch::kDouble));
    if (per_layer)
      for (int64_t L = 1; L <= Q; ++L) {
        auto y = model->decode(out.indices.narrow(2, 0, L));
        layer_err[L - 1] += eval::mpjpe_mm(motion::features_to_joints(y), gj) * n;
      }
    ++r.clips;
    r.frames += x.size(0) * T;
  }
  // A multi-rank validation gives each rank a slice of the clips: the sums are over every rank's.
  if (auto& pg = core::process_group(); pg.distributed()) {
    std::vector<double> v{err, pa_err, static_cast<double>(joint_frames), static_cast<double>(r.clips),
                          static_cast<double>(r.frames)};
    v.insert(v.end(), layer_err.begin(), layer_err.end());
    for (const auto& [name, rg] : groups)
      if (o.feature_dim == motion::kFeatureDim) v.push_back(group[name]);
    auto t = torch::tensor(v, torch::kFloat64);
    pg.sum(t);
    pg.sum(counts);
    const double* a = t.data_ptr<double>();
    err = a[0], pa_err = a[1], joint_frames = static_cast<int64_t>(a[2]);
    r.clips = static_cast<int64_t>(a[3]), r.frames = static_cast<int64_t>(a[4]);
    for (int64_t q = 0; q < Q; ++q) layer_err[q] = a[5 + q];
    size_t at = 5 + static_cast<size_t>(Q);
    for (const auto& [name, rg] : groups)
      if (o.feature_dim == motion::kFeatureDim) group[name] = a[at++];
  }
  VIMO_CHECK(r.clips > 0, "no clip to evaluate (every clip is shorter than " + std::to_string(ds) + " frames)");
  r.mpjpe_mm = err / static_cast<double>(joint_frames);
  r.pa_mpjpe_mm = pa_err / static_cast<double>(joint_frames);
  if (per_layer)
    for (int64_t q = 0; q < Q; ++q) r.mpjpe_by_layers_mm.push_back(layer_err[q] / static_cast<double>(joint_frames));
  for (auto& [k, v] : group) r.group_error[k] = v / r.frames;
  for (int64_t q = 0; q < Q; ++q) {
    auto c = counts[q];
    r.usage.push_back((c > 0).sum().item<double>() / K);
    auto p = c / c.sum();
    auto ent = -(p * torch::log(p.clamp_min(1e-12))).sum().item<double>();
    r.perplexity.push_back(std::exp(ent));
  }
  if (was_training) model->train();
  return r;
}

nlohmann::json TokenizerEvalResult::to_json() const {
  return {{"mpjpe_mm", mpjpe_mm}, {"pa_mpjpe_mm", pa_mpjpe_mm}, {"mpjpe_by_layers_mm", mpjpe_by_layers_mm}, {"feature_group_mae", group_error},
          {"codebook_usage", usage}, {"codebook_perplexity", perplexity}, {"clips", clips}, {"frames", frames}};
}

std::string TokenizerEvalResult::table() const {
  std::string s = "MPJPE " + f2(mpjpe_mm) + " mm (PA-MPJPE " + f2(pa_mpjpe_mm) + " mm) over " + std::to_string(clips) + " clips, " +
                  std::to_string(frames) + " person-frames\n\n";
  s += "layer  usage   perplexity  MPJPE with layers 0..q (mm)\n";
  for (size_t q = 0; q < usage.size(); ++q)
    s += f2(static_cast<double>(q), "%5.0f") + "  " + f2(100 * usage[q], "%5.1f%%") + "  " +
         f2(perplexity[q], "%10.1f") + "  " +
         (q < mpjpe_by_layers_mm.size() ? f2(mpjpe_by_layers_mm[q], "%8.2f") : std::string("       -")) + "\n";
  if (!group_error.empty()) {
    s += "\nfeature group  mean abs error\n";
    for (const auto& [k, v] : group_error)
      s += k + std::string(15 - std::min<size_t>(14, k.size()), ' ') + f2(v, "%.5f") + "\n";
  }
  return s;
}

}  // namespace vimo::train

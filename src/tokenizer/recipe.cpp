// Stage-1 recipe: window sampling, the RQ-VAE training task on top of train::Trainer, evaluation.
#include "vimo/tokenizer/recipe.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstdio>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/motion/clip.h"

namespace vimo::tokenizer {

WindowSampler::WindowSampler(std::vector<torch::Tensor> clips, int64_t window, int64_t batch, uint64_t seed)
    : clips_(std::move(clips)), window_(window), batch_(batch), seed_(seed) {
  for (int64_t c = 0; c < static_cast<int64_t>(clips_.size()); ++c)
    if (clips_[c].size(0) >= window_)
      for (int64_t p = 0; p < clips_[c].size(1); ++p) items_.emplace_back(c, p);
  VIMO_CHECK(!items_.empty(), "no training clip has data.window=" + std::to_string(window) +
                                  " frames; lower data.window or use longer clips");
}

torch::Tensor WindowSampler::next() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_ * 1000003ULL + static_cast<uint64_t>(batches_));
  ++batches_;
  auto pick = torch::randint(static_cast<int64_t>(items_.size()), {batch_}, gen, torch::kLong);
  auto u = torch::rand({batch_}, gen, torch::kDouble);
  std::vector<torch::Tensor> out;
  out.reserve(batch_);
  for (int64_t b = 0; b < batch_; ++b) {
    const auto [c, p] = items_[pick[b].item<int64_t>()];
    const int64_t span = clips_[c].size(0) - window_ + 1;
    const int64_t start = std::min(span - 1, static_cast<int64_t>(u[b].item<double>() * span));
    out.push_back(clips_[c].narrow(0, start, window_).select(1, p));
  }
  return torch::stack(out);  // [B, W, F]
}

torch::Tensor joints_of(const torch::Tensor& f) {
  auto s = f.sizes().vec();
  s.back() = motion::kNumJoints;
  s.push_back(3);
  return f.narrow(-1, 0, motion::kNumJoints * 3).reshape(s);
}

namespace {

class TokenizerTask : public train::Task {
 public:
  TokenizerTask(TokenizerConfig c, Rqvae model, WindowSampler sampler, std::vector<torch::Tensor> val,
                torch::Device dev)
      : c_(std::move(c)), model_(std::move(model)), sampler_(std::move(sampler)), val_(std::move(val)), dev_(dev) {}

  torch::nn::Module& module() override { return *model_; }

  train::StepOutput forward(int64_t) override {
    auto x = sampler_.next().to(dev_);  // [B, W, F]
    auto out = model_->forward(x);
    auto xn = model_->normalizer->normalize(x);
    auto recon = torch::smooth_l1_loss(out.recon_n, xn);
    auto pj = joints_of(out.recon), gj = joints_of(x);
    auto joints = (pj - gj).abs().mean();
    // Velocities in cm/frame-scale (x10 of metres) so the term has the magnitude of the others.
    auto vel = 10 * ((pj.narrow(1, 1, pj.size(1) - 1) - pj.narrow(1, 0, pj.size(1) - 1)) -
                     (gj.narrow(1, 1, gj.size(1) - 1) - gj.narrow(1, 0, gj.size(1) - 1)))
                        .abs()
                        .mean();
    auto loss = c_.loss.recon * recon + c_.loss.joints * joints + c_.loss.velocity * vel + c_.loss.commit * out.commit;
    train::StepOutput s;
    s.loss = loss;
    s.samples = x.size(0);
    s.logs = {{"recon", recon.item<double>()},
              {"joints", joints.item<double>()},
              {"velocity", vel.item<double>()},
              {"commit", out.commit.item<double>()}};
    return s;
  }

  std::map<std::string, double> validate() override {
    if (val_.empty()) return {};
    auto r = evaluate(model_, val_, dev_, false);
    std::map<std::string, double> m{{"mpjpe_mm", r.mpjpe_mm}};
    if (!r.usage.empty()) m["usage_l0"] = r.usage[0];
    return m;
  }

  std::map<std::string, std::string> weights_metadata() override {
    const auto& o = model_->options();
    return {{"format", "vimo-rqvae"},
            {"feature_dim", std::to_string(o.feature_dim)},
            {"codebook_size", std::to_string(o.codebook_size)},
            {"num_quantizers", std::to_string(o.num_quantizers)},
            {"code_dim", std::to_string(o.code_dim)},
            {"root_relative", o.root_relative ? "true" : "false"}};
  }

  nlohmann::json data_state() const override { return {{"batches", sampler_.position()}}; }
  void load_data_state(const nlohmann::json& s) override { sampler_.seek(s.at("batches").get<int64_t>()); }

 private:
  TokenizerConfig c_;
  Rqvae model_;
  WindowSampler sampler_;
  std::vector<torch::Tensor> val_;
  torch::Device dev_;
};

std::string f2(double v, const char* f = "%.2f") {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

std::unique_ptr<train::Task> make_task(const TokenizerConfig& c, Rqvae model, std::vector<torch::Tensor> train_clips,
                                       std::vector<torch::Tensor> val_clips, torch::Device dev) {
  VIMO_CHECK(c.data.window % c.model.o.downsample() == 0,
             "data.window=" + std::to_string(c.data.window) + " must be a multiple of " +
                 std::to_string(c.model.o.downsample()));
  for (const auto* set : {&train_clips, &val_clips})
    for (const auto& t : *set)
      VIMO_CHECK(t.dim() == 3 && t.size(2) == c.model.o.feature_dim,
                 "the dataset has clips of shape " + c10::str(t.sizes()) + " but model.feature_dim=" +
                     std::to_string(c.model.o.feature_dim) + "; fix model.feature_dim or the dataset");
  WindowSampler sampler(std::move(train_clips), c.data.window, c.data.batch_size, static_cast<uint64_t>(c.run.seed));
  log::info("tokenizer: ", sampler.candidates(), " training (clip, person) pairs, window ", c.data.window,
            ", batch ", c.data.batch_size, ", device ", dev.str(), ", threads ", at::get_num_threads());
  if (c.data.val_clips > 0 && static_cast<int64_t>(val_clips.size()) > c.data.val_clips)
    val_clips.resize(c.data.val_clips);
  return std::make_unique<TokenizerTask>(c, std::move(model), std::move(sampler), std::move(val_clips), dev);
}

Rqvae make_model(const TokenizerConfig& c, const torch::Tensor& mean, const torch::Tensor& sd,
                 const std::vector<torch::Tensor>& train_clips) {
  Rqvae model(c.model.o);
  VIMO_CHECK(mean.numel() == c.model.o.feature_dim && sd.numel() == c.model.o.feature_dim,
             "feature statistics have " + std::to_string(mean.numel()) + " channels but model.feature_dim=" +
                 std::to_string(c.model.o.feature_dim) + "; fix model.feature_dim or the dataset");
  torch::NoGradGuard ng;
  auto [m, s] = model_stats(train_clips, mean, sd, model->normalizer->root_relative());
  model->normalizer->mean.copy_(m);
  model->normalizer->std.copy_(s.clamp_min(1e-4));
  return model;
}

int train_tokenizer_on(const TokenizerConfig& c, const std::string& yaml, std::vector<torch::Tensor> train_clips,
                       std::vector<torch::Tensor> val_clips, const torch::Tensor& mean, const torch::Tensor& sd) {
  const auto dev = core::resolve_device(c.run.device);
  core::apply_threads(c.run.threads);
  core::seed_all(c.run.seed);
  core::open_run_dir(c.run.dir, yaml);
  auto model = make_model(c, mean, sd, train_clips);
  model->to(dev);
  auto task = make_task(c, model, std::move(train_clips), std::move(val_clips), dev);
  train::TrainerOptions to;
  to.run_dir = c.run.dir;
  to.keep_last = c.run.keep_last;
  to.resume = c.run.resume;
  to.device = dev;
  to.train = c.train;
  to.optim = c.optim;
  to.tag = "tokenizer";
  train::Trainer trainer(to, *task);
  return trainer.fit();
}

EvalResult evaluate(Rqvae& model, const std::vector<torch::Tensor>& clips, torch::Device dev, bool per_layer) {
  torch::NoGradGuard ng;
  const bool was_training = model->is_training();
  model->eval();
  const auto& o = model->options();
  const int64_t Q = o.num_quantizers, K = o.codebook_size, ds = o.downsample();
  EvalResult r;
  std::vector<double> layer_err(Q, 0.0);
  double err = 0;
  std::map<std::string, double> group;
  const std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> groups = {
      {"positions", {0, 66}}, {"velocities", {66, 132}}, {"rotations", {132, 258}}, {"contacts", {258, 262}}};
  auto counts = torch::zeros({Q, K}, torch::kDouble);
  int64_t joint_frames = 0;
  for (const auto& clip : clips) {
    const int64_t T = clip.size(0) / ds * ds;
    if (T == 0) continue;
    auto x = clip.narrow(0, 0, T).permute({1, 0, 2}).to(dev, torch::kFloat);  // [P, T, F]
    auto out = model->forward(x);
    auto gj = joints_of(x);
    err += (joints_of(out.recon) - gj).norm(2, -1).sum().item<double>();
    joint_frames += x.size(0) * T * motion::kNumJoints;
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
        layer_err[L - 1] += (joints_of(y) - gj).norm(2, -1).sum().item<double>();
      }
    ++r.clips;
    r.frames += x.size(0) * T;
  }
  VIMO_CHECK(r.clips > 0, "no clip to evaluate (every clip is shorter than " + std::to_string(ds) + " frames)");
  r.mpjpe_mm = 1000 * err / joint_frames;
  if (per_layer)
    for (int64_t q = 0; q < Q; ++q) r.mpjpe_by_layers_mm.push_back(1000 * layer_err[q] / joint_frames);
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

nlohmann::json EvalResult::to_json() const {
  return {{"mpjpe_mm", mpjpe_mm}, {"mpjpe_by_layers_mm", mpjpe_by_layers_mm}, {"feature_group_mae", group_error},
          {"codebook_usage", usage}, {"codebook_perplexity", perplexity}, {"clips", clips}, {"frames", frames}};
}

std::string EvalResult::table() const {
  std::string s = "MPJPE " + f2(mpjpe_mm) + " mm over " + std::to_string(clips) + " clips, " +
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

}  // namespace vimo::tokenizer

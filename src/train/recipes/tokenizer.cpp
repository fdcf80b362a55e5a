// Stage-1 recipe: the packed data, the RQ-VAE training task on data::WindowLoader batches, and
// `vimo tokenizer train` on top of train::Trainer.
#include "vimo/train/recipes/tokenizer.h"

#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/process_group.h"
#include "vimo/data/prepare.h"
#include "vimo/motion/features.h"
#include "vimo/train/setup.h"

namespace fs = std::filesystem;

namespace vimo::train {
namespace {

const char* kMakeData =
    "make one with `vimo data synth` + `vimo data prepare --config configs/data/synthetic.yaml` (synthetic), "
    "or `vimo data prepare --config configs/data/<dataset>.yaml` for real data, then pass data.packed=DIR";

// Packed datasets hold the 262-d InterHuman features only.
void check_feature_dim(const TokenizerConfig& c, const std::string& data) {
  VIMO_CHECK(c.model.feature_dim == motion::kFeatureDim,
             "the dataset '" + data + "' has " + std::to_string(motion::kFeatureDim) +
                 "-d features but model.feature_dim=" + std::to_string(c.model.feature_dim) +
                 "; set model.feature_dim or use a matching dataset");
}

class TokenizerTask : public Task {
 public:
  TokenizerTask(TokenizerConfig c, tokenizer::Rqvae model, std::unique_ptr<data::WindowLoader> loader,
                std::vector<torch::Tensor> val, torch::Device dev)
      : c_(std::move(c)), model_(std::move(model)), loader_(std::move(loader)), val_(std::move(val)), dev_(dev) {}

  torch::nn::Module& module() override { return *model_; }

  StepOutput forward(int64_t) override {
    auto x = loader_->next().motion.to(dev_);  // [B, W, F] raw features
    auto out = model_->forward(x);
    auto xn = model_->normalizer->normalize(x);
    auto recon = torch::smooth_l1_loss(out.recon_n, xn);
    auto pj = motion::features_to_joints(out.recon), gj = motion::features_to_joints(x);
    auto joints = (pj - gj).abs().mean();
    // Velocities in cm/frame-scale (x10 of metres) so the term has the magnitude of the others.
    auto vel = 10 * ((pj.narrow(1, 1, pj.size(1) - 1) - pj.narrow(1, 0, pj.size(1) - 1)) -
                     (gj.narrow(1, 1, gj.size(1) - 1) - gj.narrow(1, 0, gj.size(1) - 1)))
                        .abs()
                        .mean();
    auto loss = c_.loss.recon * recon + c_.loss.joints * joints + c_.loss.velocity * vel + c_.loss.commit * out.commit;
    StepOutput s;
    s.loss = loss;
    s.samples = x.size(0);
    s.logs = {{"recon", recon}, {"joints", joints}, {"velocity", vel}, {"commit", out.commit}};
    return s;
  }

  // Each rank scores its slice of the validation clips; evaluate_tokenizer sums over ranks.
  bool validates_on_every_rank() const override { return true; }
  std::map<std::string, double> validate() override {
    if (val_.empty()) return {};
    const auto& pg = core::process_group();
    const auto [lo, hi] = core::shard_range(static_cast<int64_t>(val_.size()), pg.rank(), pg.world_size());
    const std::vector<torch::Tensor> mine(val_.begin() + lo, val_.begin() + hi);
    auto r = evaluate_tokenizer(model_, mine, dev_, false);
    std::map<std::string, double> m{{"mpjpe_mm", r.mpjpe_mm}};
    if (!r.usage.empty()) m["usage_l0"] = r.usage[0];
    return m;
  }

  // What MotionTokenizer::load rebuilds the model from, and the dataset `vimo tokenizer eval` defaults to.
  std::map<std::string, std::string> weights_metadata() override {
    auto m = tokenizer::architecture_metadata(model_->options());
    m["data.packed"] = c_.data.packed;
    return m;
  }

  nlohmann::json data_state() const override { return loader_->state(); }
  void load_data_state(const nlohmann::json& s) override { loader_->load_state(s); }

 private:
  TokenizerConfig c_;
  tokenizer::Rqvae model_;
  std::unique_ptr<data::WindowLoader> loader_;
  std::vector<torch::Tensor> val_;
  torch::Device dev_;
};

}  // namespace

data::PackedDataset open_packed_split(const std::string& dir, const std::string& split) {
  VIMO_CHECK(!dir.empty(), std::string("data.packed is not set; ") + kMakeData);
  VIMO_CHECK(fs::is_directory(dir), "data.packed='" + dir + "' does not exist; " + kMakeData);
  const std::string path = (fs::path(dir) / (split + ".h5")).string();
  VIMO_CHECK(fs::exists(path), "packed split '" + path + "' does not exist; " + kMakeData);
  auto ds = data::PackedDataset::open(path);
  VIMO_CHECK(ds.size() > 0, "packed split '" + path + "' holds no clips");
  return ds;
}

std::vector<torch::Tensor> split_clips(const data::PackedDataset& ds, int64_t limit) {
  const int64_t n = limit > 0 ? std::min(limit, ds.size()) : ds.size();
  std::vector<torch::Tensor> clips;
  clips.reserve(n);
  for (int64_t i = 0; i < n; ++i) clips.push_back(ds.clip(i).motion);
  return clips;
}

tokenizer::Rqvae make_tokenizer_model(const TokenizerConfig& c, const data::Normalizer& stats,
                                      const data::PackedDataset& train) {
  check_feature_dim(c, train.path());
  tokenizer::Rqvae model(c.model);
  torch::NoGradGuard ng;
  auto [m, s] = tokenizer::model_stats(split_clips(train), stats.mean(), stats.std(), c.model.root_relative);
  model->normalizer->mean.copy_(m);
  model->normalizer->std.copy_(s.clamp_min(1e-4));
  return model;
}

std::unique_ptr<Task> make_tokenizer_task(const TokenizerConfig& c, tokenizer::Rqvae model, data::PackedDataset train,
                                          std::vector<torch::Tensor> val_clips, torch::Device dev) {
  const int64_t ds = c.model.downsample();
  VIMO_CHECK(c.data.loader.window % ds == 0, "data.window=" + std::to_string(c.data.loader.window) +
                                                 " must be a multiple of " + std::to_string(ds));
  auto o = c.data.loader;
  o.seed = c.run.seed;
  o.shard_rank = core::process_group().rank();  // this rank's slice of every global batch
  o.shard_count = core::process_group().world_size();
  const std::string path = train.path();
  // Raw windows: the RQ-VAE's own normalizer module normalizes them.
  auto loader = std::make_unique<data::WindowLoader>(std::move(train), data::Normalizer::identity(), o);
  log::info("tokenizer: ", loader->windows_available(), " training windows in '", path, "' (",
            loader->clips_too_short(), " clips shorter than the window), window ", o.window, ", batch ", o.batch_size,
            o.shard_count > 1 ? log::cat(" (", o.batch_size / o.shard_count, " per rank)") : std::string(),
            ", ", loader->batches_per_epoch(), " batches per epoch, device ", dev.str(), ", threads ",
            at::get_num_threads());
  if (c.data.val_clips > 0 && static_cast<int64_t>(val_clips.size()) > c.data.val_clips)
    val_clips.resize(c.data.val_clips);
  return std::make_unique<TokenizerTask>(c, std::move(model), std::move(loader), std::move(val_clips), dev);
}

int train_tokenizer(const TokenizerConfig& c, const std::string& yaml) {
  // Everything about the data is checked before the run directory is made.
  auto train_ds = open_packed_split(c.data.packed, "train");
  std::vector<torch::Tensor> val;
  if (fs::exists(fs::path(c.data.packed) / "val.h5"))
    val = split_clips(open_packed_split(c.data.packed, "val"), c.data.val_clips);
  else
    log::warn("no val split in '", c.data.packed, "': training without validation");
  const std::string stats_path = (fs::path(c.data.packed) / "stats.safetensors").string();
  data::Normalizer stats;
  if (fs::exists(stats_path)) {
    stats = data::Normalizer::load(stats_path);
  } else {
    log::warn("'", stats_path, "' not found; computing feature statistics from the training split");
    auto s = data::compute_stats(train_ds, data::DataSection{}.std_floor);
    stats = data::Normalizer(s.mean, s.std);
  }
  check_feature_dim(c, c.data.packed);
  const auto dev = setup_run(c.run, c.dist, yaml);
  auto model = make_tokenizer_model(c, stats, train_ds);
  model->to(dev);
  auto task = make_tokenizer_task(c, model, std::move(train_ds), std::move(val), dev);
  Trainer trainer(trainer_options(c.run, c.train, c.optim, c.dist, dev, "tokenizer"), *task);
  return trainer.fit();
}

}  // namespace vimo::train

// Stage-1 recipe: N steps straight vs N/2, stop, resume, N/2 give identical weights (EMA codebooks,
// quantizer dropout and the WindowLoader's prefetched windows included); the task's data state is
// the loader's; evaluation numbers; the weights carry every architecture key. The evaluator recipe's
// data.retime on one batch: the drawn clips equal motion::retime_features of their frames (normalized
// back), padded and measured per clip, with the speed words in their caption; the others untouched.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/motion/features.h"
#include "vimo/data/augment.h"
#include "vimo/motion/synth.h"
#include "vimo/train/recipes/evaluator.h"
#include "vimo/train/recipes/tokenizer.h"
#include "vimo/train/setup.h"

using namespace vimo;
namespace fs = std::filesystem;

namespace {
// Not std::filesystem::remove_all: in this link the symbol resolves into libtorch.so and crashes.
using data::testing::rm_rf;

train::TokenizerConfig tiny_config(const std::string& dir) {
  train::TokenizerConfig c;
  c.run.dir = dir;
  c.run.device = "cpu";
  c.run.threads = 1;
  c.model.width = 16;
  c.model.depth = 1;
  c.model.code_dim = 8;
  c.model.codebook_size = 16;
  c.model.num_quantizers = 3;
  c.model.quantizer_dropout = 0.5;
  c.data.loader.window = 16;
  c.data.loader.batch_size = 4;
  c.data.loader.workers = 1;  // batches built ahead on a thread, as in training
  c.data.loader.prefetch = 3;
  c.train.steps = 8;
  c.train.val_every = 3;
  c.train.log_every = 4;
  c.optim.warmup_steps = 2;
  return c;
}

// A packed split of `n` random two-person clips of 20, 24, ... frames.
data::PackedDataset packed(const fs::path& file, int n, int64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<motion::Clip> clips;
  for (int i = 0; i < n; ++i)
    clips.push_back({"c" + std::to_string(i), torch::randn({20 + 4 * i, 2, 262}, g) * 0.1, {}});
  data::write_packed(file.string(), clips);
  return data::PackedDataset::open(file.string());
}

data::Normalizer stats() { return data::Normalizer(torch::zeros({262}), torch::ones({262}) * 0.1); }

// Forwards to the recipe's task and raises a stop signal after a given step.
class StopAfter : public train::Task {
 public:
  StopAfter(std::unique_ptr<train::Task> t, int64_t at) : t_(std::move(t)), at_(at) {}
  torch::nn::Module& module() override { return t_->module(); }
  train::StepOutput forward(int64_t s) override { return t_->forward(s); }
  void after_step(int64_t s) override {
    if (s + 1 == at_) core::request_stop_for_test(SIGTERM);
  }
  std::map<std::string, double> validate() override { return t_->validate(); }
  nlohmann::json data_state() const override { return t_->data_state(); }
  void load_data_state(const nlohmann::json& s) override { t_->load_data_state(s); }
  std::unique_ptr<train::Task> t_;
  int64_t at_;
};

tokenizer::Rqvae run(const fs::path& root, const std::string& dir, int64_t stop_at, int exit_code) {
  auto c = tiny_config(dir);
  torch::manual_seed(c.run.seed);
  auto train_ds = data::PackedDataset::open((root / "train.h5").string());
  auto val = train::split_clips(data::PackedDataset::open((root / "val.h5").string()));
  auto m = train::make_tokenizer_model(c, stats(), train_ds);
  StopAfter task(train::make_tokenizer_task(c, m, train_ds, val, torch::kCPU), stop_at);
  EXPECT_EQ(train::Trainer(train::trainer_options(c.run, c.train, c.optim, c.dist, torch::kCPU, "tokenizer"), task).fit(),
            exit_code);
  core::request_stop_for_test(0);
  return m;
}

struct Fixture {
  fs::path root;
  explicit Fixture(const std::string& name)
      : root(fs::temp_directory_path() / ("vimo_" + name + "_" + std::to_string(::getpid()))) {
    rm_rf(root);
    fs::create_directories(root);
    packed(root / "train.h5", 4, 1);
    packed(root / "val.h5", 2, 2);
  }
  ~Fixture() { rm_rf(root); }
};
}  // namespace

TEST(TrainRecipesTokenizer, StopAndResumeGivesIdenticalWeights) {
  at::set_num_threads(1);
  Fixture f("tok_resume");
  auto a = run(f.root, (f.root / "a").string(), -1, kExitOk);
  run(f.root, (f.root / "b").string(), 4, kExitInterrupted);
  auto b = run(f.root, (f.root / "b").string(), -1, kExitOk);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& p : ba) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
  // The resumed run's data position is the loader's, 8 batches in.
  const auto state = nlohmann::json::parse(std::ifstream(f.root / "b/checkpoints/step_00000008/state.json"));
  EXPECT_EQ(state.at("data").at("loader"), "windows");
}

TEST(TrainRecipesTokenizer, DataStateIsTheWindowLoaders) {
  Fixture f("tok_state");
  auto c = tiny_config((f.root / "r").string());
  auto ds = data::PackedDataset::open((f.root / "train.h5").string());
  auto task = train::make_tokenizer_task(c, train::make_tokenizer_model(c, stats(), ds), ds, {}, torch::kCPU);
  for (int i = 0; i < 5; ++i) task->forward(i);
  auto s = task->data_state();
  // 4 clips of 20..32 frames x 2 persons = 208 person-frames; 16 x 4 per batch: 4 batches per epoch.
  EXPECT_EQ(s.at("loader"), "windows");
  EXPECT_EQ(s.at("epoch").get<int64_t>() * 4 + s.at("cursor").get<int64_t>(), 5);
  EXPECT_EQ(s.at("seed").get<int64_t>(), c.run.seed);
  // A state saved with another batch size is refused by name.
  auto other = s;
  other["batch_size"] = 8;
  try {
    task->load_data_state(other);
    FAIL() << "a state of another batch size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos) << e.what();
  }
}

TEST(TrainRecipesTokenizer, WeightsMetadataHoldsEveryArchitectureKey) {
  Fixture f("tok_meta");
  auto c = tiny_config((f.root / "r").string());
  c.data.packed = "data/packed/x";
  auto ds = data::PackedDataset::open((f.root / "train.h5").string());
  auto task = train::make_tokenizer_task(c, train::make_tokenizer_model(c, stats(), ds), ds, {}, torch::kCPU);
  const auto m = task->weights_metadata();
  for (const auto& k : core::architecture_keys<train::TokenizerConfig>()) {
    ASSERT_EQ(k.rfind("model.", 0), 0u) << k;  // every architecture key lives in the model section
    EXPECT_TRUE(m.count(k.substr(6))) << k;
  }
  EXPECT_EQ(m.at("width"), "16");
  EXPECT_EQ(m.at("num_quantizers"), "3");
  EXPECT_EQ(m.at("root_relative"), "true");
  EXPECT_EQ(m.at("data.packed"), "data/packed/x");
  EXPECT_EQ(m.at("format"), tokenizer::kRqvaeFormat);
}

TEST(TrainRecipesTokenizer, EvaluateMeasuresJointErrorInMillimetres) {
  tokenizer::RqvaeOptions o;
  o.width = 8;
  o.depth = 1;
  o.code_dim = 4;
  o.codebook_size = 4;
  o.num_quantizers = 2;
  tokenizer::Rqvae m(o);
  m->eval();
  std::vector<torch::Tensor> c = {torch::randn({12, 2, 262})};
  auto r = train::evaluate_tokenizer(m, c, torch::kCPU);
  // By hand: mean over persons, frames, joints of the Euclidean joint distance, x1000.
  torch::NoGradGuard ng;
  auto x = c[0].permute({1, 0, 2});
  auto y = m->forward(x).recon;
  auto ref = (motion::features_to_joints(y) - motion::features_to_joints(x)).norm(2, -1).mean().item<double>() * 1000;
  EXPECT_NEAR(r.mpjpe_mm, ref, 1e-3 * ref);
  ASSERT_EQ(r.mpjpe_by_layers_mm.size(), 2u);
  EXPECT_NEAR(r.mpjpe_by_layers_mm[1], r.mpjpe_mm, 1e-3 * ref);
  EXPECT_EQ(r.frames, 24);
  for (double u : r.usage) EXPECT_TRUE(u > 0 && u <= 1);
}

TEST(EvaluatorRetime, DrawnClipsAreRetimedSkeletonsWithTheSpeedWords) {
  // Three clips of different lengths (one a single person) in a padded batch, a non-trivial normalizer.
  std::vector<torch::Tensor> feats;
  for (int k = 0; k < 3; ++k) {
    auto c = motion::synth_clip(5, k);
    feats.push_back(motion::joints_to_features({c.joints.select(1, 0), c.joints.select(1, 1)}).narrow(0, 0, 60 + 30 * k));
  }
  feats[2].select(1, 1).zero_();
  const auto norm = data::Normalizer(torch::rand({262}) * 0.1, torch::rand({262}) + 0.5);
  data::ClipBatch b;
  const int64_t B = 3, T = feats[2].size(0);
  b.motion = torch::zeros({B, T, 2, 262});
  std::vector<int64_t> len, persons = {2, 2, 1};
  for (int64_t i = 0; i < B; ++i) {
    const auto n = feats[static_cast<size_t>(i)].size(0);
    auto x = norm.normalize(feats[static_cast<size_t>(i)]);
    if (persons[static_cast<size_t>(i)] == 1) x.select(1, 1).zero_();
    b.motion[i].narrow(0, 0, n).copy_(x);
    len.push_back(n);
  }
  b.lengths = torch::tensor(len, torch::kLong);
  b.persons = torch::tensor(persons, torch::kLong);
  const std::vector<std::string> base = {"one", "two", "three"};

  // share 1: every clip retimed, slower or faster, the caption telling which.
  auto m = b.motion.clone();
  auto caps = base;
  auto lengths = train::retime_batch(b, norm, 1.0, 300, 7, m, caps);
  int slower = 0;
  for (int64_t i = 0; i < B; ++i) {
    const auto& cap = caps[static_cast<size_t>(i)];
    const bool slow = cap == data::retimed_caption(base[static_cast<size_t>(i)], true);
    ASSERT_TRUE(slow || cap == data::retimed_caption(base[static_cast<size_t>(i)], false)) << cap;
    slower += slow;
    const auto p = persons[static_cast<size_t>(i)];
    auto want = norm.normalize(motion::retime_features(feats[static_cast<size_t>(i)].narrow(1, 0, p),
                                                       slow ? data::kRetimeFactor : 1.0 / data::kRetimeFactor));
    const int64_t n = lengths[i].item<int64_t>();
    ASSERT_EQ(n, want.size(0)) << i;
    EXPECT_NEAR(static_cast<double>(n), len[static_cast<size_t>(i)] * (slow ? 1.5 : 1.0 / 1.5), 2.0) << i;
    EXPECT_TRUE(torch::allclose(m[i].narrow(0, 0, n).narrow(1, 0, p), want, 1e-5, 1e-5)) << i;
    EXPECT_EQ(m[i].narrow(0, n, m.size(1) - n).abs().sum().item<double>(), 0.0) << "padding of clip " << i;
    if (p == 1) EXPECT_EQ(m[i].select(1, 1).abs().sum().item<double>(), 0.0);
  }
  EXPECT_EQ(m.size(1), lengths.max().item<int64_t>());
  // The same seed draws the same; another seed over many batches draws both directions.
  auto m2 = b.motion.clone();
  auto caps2 = base;
  train::retime_batch(b, norm, 1.0, 300, 7, m2, caps2);
  EXPECT_EQ(caps2, caps);
  EXPECT_TRUE(torch::equal(m2, m));
  for (uint64_t s = 0; s < 8; ++s) {
    auto m3 = b.motion.clone();
    auto c3 = base;
    train::retime_batch(b, norm, 1.0, 300, s, m3, c3);
    for (int64_t i = 0; i < B; ++i) slower += c3[static_cast<size_t>(i)] == data::retimed_caption(base[static_cast<size_t>(i)], true);
  }
  EXPECT_GT(slower, 3);
  EXPECT_LT(slower, 24);
  // Slower only where it fits: with max_frames below 1.5 x every length (60, 90, 120), all are faster.
  auto m4 = b.motion.clone();
  auto c4 = base;
  train::retime_batch(b, norm, 1.0, 80, 3, m4, c4);
  for (int64_t i = 0; i < B; ++i) EXPECT_EQ(c4[static_cast<size_t>(i)], data::retimed_caption(base[static_cast<size_t>(i)], false));
  // share 0: nothing changes.
  auto m0 = b.motion.clone();
  auto c0 = base;
  auto l0 = train::retime_batch(b, norm, 0.0, 300, 7, m0, c0);
  EXPECT_EQ(c0, base);
  EXPECT_TRUE(torch::equal(m0, b.motion));
  EXPECT_TRUE(torch::equal(l0, b.lengths));
}

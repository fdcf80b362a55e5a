// Stage-1 recipe: N steps straight vs N/2, stop, resume, N/2 give identical weights (EMA codebooks,
// quantizer dropout and window sampling included); window sampling and evaluation numbers.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>

#include "vimo/core/run.h"
#include "vimo/tokenizer/recipe.h"

using namespace vimo;
namespace fs = std::filesystem;

namespace {
// Not std::filesystem::remove_all: in this link the symbol resolves into libtorch.so and crashes.
void rm_rf(const fs::path& p) { std::system(("rm -rf '" + p.string() + "'").c_str()); }
}  // namespace

namespace {
tokenizer::TokenizerConfig tiny_config(const std::string& dir) {
  tokenizer::TokenizerConfig c;
  c.run.dir = dir;
  c.run.device = "cpu";
  c.run.threads = 1;
  c.model.o.width = 16;
  c.model.o.depth = 1;
  c.model.o.code_dim = 8;
  c.model.o.codebook_size = 16;
  c.model.o.num_quantizers = 3;
  c.model.o.quantizer_dropout = 0.5;
  c.data.window = 16;
  c.data.batch_size = 4;
  c.train.steps = 8;
  c.train.val_every = 3;
  c.train.log_every = 4;
  c.optim.warmup_steps = 2;
  return c;
}

std::vector<torch::Tensor> clips(int n, int64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> out;
  for (int i = 0; i < n; ++i) out.push_back(torch::randn({20 + 4 * i, 2, 262}, g) * 0.1);
  return out;
}

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

tokenizer::Rqvae run(const std::string& dir, int64_t stop_at, int exit_code) {
  auto c = tiny_config(dir);
  torch::manual_seed(c.run.seed);
  auto train = clips(4, 1);
  auto m = tokenizer::make_model(c, torch::zeros({262}), torch::ones({262}) * 0.1, train);
  StopAfter task(tokenizer::make_task(c, m, train, clips(2, 2), torch::kCPU), stop_at);
  train::TrainerOptions o;
  o.run_dir = dir;
  o.train = c.train;
  o.optim = c.optim;
  EXPECT_EQ(train::Trainer(o, task).fit(), exit_code);
  core::request_stop_for_test(0);
  return m;
}
}  // namespace

TEST(TokenizerRecipe, StopAndResumeGivesIdenticalWeights) {
  at::set_num_threads(1);
  const auto root = fs::temp_directory_path() / ("vimo_tok_resume_" + std::to_string(::getpid()));
  rm_rf(root);
  auto a = run((root / "a").string(), -1, kExitOk);
  run((root / "b").string(), 4, kExitInterrupted);
  auto b = run((root / "b").string(), -1, kExitOk);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto ba = a->named_buffers(), bb = b->named_buffers();
  for (const auto& p : ba) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
  rm_rf(root);
}

TEST(TokenizerRecipe, WindowsComeFromTheClipsAndRepeatBySeed) {
  std::vector<torch::Tensor> c = {torch::arange(40 * 2 * 3, torch::kFloat).reshape({40, 2, 3})};
  tokenizer::WindowSampler s(c, 8, 5, 3), s2(c, 8, 5, 3);
  auto w = s.next();
  ASSERT_EQ(w.sizes().vec(), (std::vector<int64_t>{5, 8, 3}));
  // Each window is 8 consecutive frames of one person: frame stride is 2*3 in the arange.
  EXPECT_TRUE(torch::equal(w.select(2, 0).diff(1, 1), torch::full({5, 7}, 6.0)));
  s2.seek(0);
  EXPECT_TRUE(torch::equal(s2.next(), w));
  EXPECT_FALSE(torch::equal(s.next(), w));
}

TEST(TokenizerRecipe, EvaluateMeasuresJointErrorInMillimetres) {
  tokenizer::RqvaeOptions o;
  o.width = 8;
  o.depth = 1;
  o.code_dim = 4;
  o.codebook_size = 4;
  o.num_quantizers = 2;
  tokenizer::Rqvae m(o);
  m->eval();
  std::vector<torch::Tensor> c = {torch::randn({12, 2, 262})};
  auto r = tokenizer::evaluate(m, c, torch::kCPU);
  // By hand: mean over persons, frames, joints of the Euclidean joint distance, x1000.
  torch::NoGradGuard ng;
  auto x = c[0].permute({1, 0, 2});
  auto y = m->forward(x).recon;
  auto ref = (tokenizer::joints_of(y) - tokenizer::joints_of(x)).norm(2, -1).mean().item<double>() * 1000;
  EXPECT_NEAR(r.mpjpe_mm, ref, 1e-3 * ref);
  ASSERT_EQ(r.mpjpe_by_layers_mm.size(), 2u);
  EXPECT_NEAR(r.mpjpe_by_layers_mm[1], r.mpjpe_mm, 1e-3 * ref);
  EXPECT_EQ(r.frames, 24);
  for (double u : r.usage) EXPECT_TRUE(u > 0 && u <= 1);
}

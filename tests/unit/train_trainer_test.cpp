// Trainer: the learning-rate schedule against hand-computed values, accumulation, exact resume of a
// small regression task interrupted by a stop signal, the launch environment and the gradient buckets.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/train/grad_sync.h"
#include "vimo/train/trainer.h"

using namespace vimo;
namespace fs = std::filesystem;

namespace {
// Not std::filesystem::remove_all: in this link the symbol resolves into libtorch.so and crashes.
using data::testing::rm_rf;
}  // namespace

TEST(TrainSchedule, WarmupCosineAndStep) {
  train::OptimSection o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  o.min_lr_ratio = 0.0;
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 0, 104), 0.25);
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 3, 104), 1.0);
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 4, 104), 1.0);
  EXPECT_NEAR(train::learning_rate(o, 54, 104), 0.5, 1e-12);  // halfway: (1 + cos(pi/2)) / 2
  EXPECT_NEAR(train::learning_rate(o, 104, 104), 0.0, 1e-12);
  o.schedule = "step";
  o.decay_at = {10, 20};
  o.gamma = 0.5;
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 9, 100), 1.0);
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 10, 100), 0.5);
  EXPECT_DOUBLE_EQ(train::learning_rate(o, 25, 100), 0.25);
}

namespace {
// y = x W* on random batches; the batch of step n is drawn from a generator seeded by n.
class Regression : public train::Task {
 public:
  Regression() { lin = torch::nn::Linear(4, 2); }
  torch::nn::Module& module() override { return *lin; }
  train::StepOutput forward(int64_t step) override {
    auto g = at::make_generator<at::CPUGeneratorImpl>(100 + batches++);
    auto x = torch::randn({8, 4}, g);
    auto y = x.matmul(torch::arange(8, torch::kFloat).reshape({4, 2}));
    auto noise = torch::randn({8, 2}) * 0.01;  // from the global RNG: its state must resume too
    auto loss = torch::mse_loss(lin(x), y + noise);
    if (step == nan_at) loss = loss * std::numeric_limits<float>::quiet_NaN();
    return {loss, {{"weight_sum", lin->weight.sum()}}, 8};
  }
  void after_step(int64_t step) override {
    if (step + 1 == stop_at) core::request_stop_for_test(SIGINT);
  }
  std::map<std::string, double> validate() override { return {{"loss", lin->weight.sum().item<double>()}}; }
  nlohmann::json data_state() const override { return {{"batches", batches}}; }
  void load_data_state(const nlohmann::json& s) override { batches = s.at("batches").get<int64_t>(); }
  torch::nn::Linear lin{nullptr};
  int64_t batches = 0, stop_at = -1, nan_at = -1;
};

train::TrainerOptions options(const std::string& dir) {
  train::TrainerOptions o;
  o.run_dir = dir;
  o.train.steps = 10;
  o.train.grad_accum = 2;
  o.train.val_every = 3;
  o.train.ckpt_every = 100;
  o.train.log_every = 5;
  o.optim.lr = 0.05;
  o.optim.warmup_steps = 2;
  o.optim.weight_decay = 0.01;
  return o;
}
}  // namespace

TEST(Trainer, StopAndResumeGivesTheSameWeights) {
  const auto root = fs::temp_directory_path() / ("vimo_trainer_" + std::to_string(::getpid()));
  rm_rf(root);
  torch::manual_seed(7);
  Regression straight;
  ASSERT_EQ(train::Trainer(options((root / "a").string()), straight).fit(), kExitOk);

  torch::manual_seed(7);
  Regression first;
  first.stop_at = 4;
  train::Trainer t1(options((root / "b").string()), first);
  ASSERT_EQ(t1.fit(), kExitInterrupted);
  EXPECT_EQ(t1.step(), 4);
  core::request_stop_for_test(0);
  torch::manual_seed(123);  // a different process state: everything must come from the checkpoint
  Regression second;
  train::Trainer t2(options((root / "b").string()), second);
  ASSERT_EQ(t2.fit(), kExitOk);
  EXPECT_EQ(t2.step(), 10);
  EXPECT_TRUE(torch::equal(straight.lin->weight, second.lin->weight));
  EXPECT_TRUE(torch::equal(straight.lin->bias, second.lin->bias));
  EXPECT_TRUE(fs::exists(root / "b" / "best" / "DONE"));
  // The loss went down: the trainer optimizes.
  EXPECT_LT(torch::mse_loss(second.lin->weight.t(), torch::arange(8, torch::kFloat).reshape({4, 2})).item<double>(),
            torch::mse_loss(Regression().lin->weight.t(), torch::arange(8, torch::kFloat).reshape({4, 2})).item<double>());
  rm_rf(root);
}

TEST(Trainer, NanLossIsANamedErrorBeforeAnyCheckpointOfItsWeights) {
  // The loss is read back only at log, validation and checkpoint steps: a NaN at step 2 (0-based) is
  // found at the checkpoint of step 4, which is then not written; step 2's checkpoint stays the latest.
  const auto root = fs::temp_directory_path() / ("vimo_trainer_nan_" + std::to_string(::getpid()));
  rm_rf(root);
  Regression r;
  r.nan_at = 2;
  auto o = options(root.string());
  o.train.val_every = 0;
  o.train.ckpt_every = 2;
  o.train.grad_accum = 1;
  std::string what;
  try {
    train::Trainer(o, r).fit();
  } catch (const Error& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("NaN or Inf between step 2 and step 4"), std::string::npos) << what;
  std::ifstream latest(root / "latest");
  std::string l;
  std::getline(latest, l);
  EXPECT_EQ(l, "checkpoints/step_00000002");
  EXPECT_FALSE(fs::exists(root / "checkpoints" / "step_00000004"));
  // The task's logged tensors are averaged over the interval and read at the log step.
  const auto root2 = root.string() + "_logs";
  rm_rf(root2);
  Regression ok;
  auto o2 = options(root2);
  ASSERT_EQ(train::Trainer(o2, ok).fit(), kExitOk);
  std::ifstream metrics(root2 + "/metrics.jsonl");
  std::string first;
  nlohmann::json row;
  while (std::getline(metrics, first) && (row = nlohmann::json::parse(first)).at("split") != "train") {
  }
  EXPECT_EQ(row.at("step").get<int64_t>(), 5);
  EXPECT_TRUE(row.contains("weight_sum") && row.contains("loss") && row.contains("grad_norm")) << first;
  EXPECT_TRUE(std::isfinite(row.at("weight_sum").get<double>()));
  rm_rf(root);
  rm_rf(root2);
}

TEST(Trainer, RejectsBf16OnCpu) {
  Regression r;
  auto o = options("/tmp/unused");
  o.train.precision = "bf16";
  EXPECT_THROW({ train::Trainer t(o, r); }, Error);
}

namespace {
// Sets environment variables for the scope, restoring the previous values.
struct ScopedEnv {
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
                          "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NODELIST", "TORCHELASTIC_USE_AGENT_STORE"}) {
      const char* v = std::getenv(k);
      saved.emplace_back(k, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(k);
    }
    for (const auto& [k, v] : vars) ::setenv(k, v, 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : saved) v ? ::setenv(k.c_str(), v->c_str(), 1) : ::unsetenv(k.c_str());
  }
};
}  // namespace

TEST(Distributed, LaunchEnvironmentOfTorchrunAndSlurm) {
  {
    ScopedEnv e({});
    const auto l = vimo::train::launch_env();
    EXPECT_EQ(l.world_size, 1);
    EXPECT_EQ(l.source, "none");
  }
  {
    ScopedEnv e({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node7"},
                 {"MASTER_PORT", "29400"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
    const auto l = vimo::train::launch_env();
    EXPECT_EQ(l.source, "torchrun");
    EXPECT_EQ(l.rank, 1);
    EXPECT_EQ(l.world_size, 4);
    EXPECT_EQ(l.local_rank, 1);
    EXPECT_EQ(l.master_addr, "node7");
    EXPECT_EQ(l.master_port, 29400);
    EXPECT_TRUE(l.agent_store);
  }
  {
    ScopedEnv e({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                 {"SLURM_JOB_NODELIST", "gpu[03-05,9],cpu1"}});
    const auto l = vimo::train::launch_env();
    EXPECT_EQ(l.source, "slurm");
    EXPECT_EQ(l.rank, 5);
    EXPECT_EQ(l.world_size, 8);
    EXPECT_EQ(l.local_rank, 1);
    EXPECT_EQ(l.master_addr, "gpu03");
    EXPECT_EQ(l.master_port, 29500);
  }
  EXPECT_EQ(vimo::train::first_slurm_host("a1,b2"), "a1");
  EXPECT_EQ(vimo::train::first_slurm_host("n[7]"), "n7");
  EXPECT_EQ(vimo::train::first_slurm_host("rack1-n[12,14-16]"), "rack1-n12");
  auto message = [](std::initializer_list<std::pair<const char*, const char*>> vars) {
    ScopedEnv e(vars);
    try {
      vimo::train::launch_env();
    } catch (const vimo::Error& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}).find("RANK='2'"),
            std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE='two'"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
                .find("MASTER_PORT='70000'"),
            std::string::npos);
}

namespace {
// Two ranks that hold the same gradients: every sum doubles. Records each started collective's size and
// whether it started inside the backward pass; `other_has_all`: the other rank has every gradient.
struct TwinGroup : core::ProcessGroup {
  int world_size() const override { return 2; }
  void sum(torch::Tensor& t) override {
    const auto mine = t.clone();
    t.mul_(2);
    if (other_has_all && t.numel() > flags_from)  // the has-a-gradient flags: mine + 1
      t.narrow(0, flags_from, t.numel() - flags_from).copy_(mine.narrow(0, flags_from, t.numel() - flags_from) + 1);
  }
  std::unique_ptr<core::PendingCollective> sum_async(torch::Tensor& t) override {
    started.emplace_back(t.numel(), in_backward);
    struct Later : core::PendingCollective {
      torch::Tensor t;
      void wait() override { t.mul_(2); }
    };
    auto p = std::make_unique<Later>();
    p->t = t;
    return p;
  }
  std::vector<std::pair<int64_t, bool>> started;
  bool in_backward = false;
  bool other_has_all = false;
  int64_t flags_from = 0;
};

// Four linear layers, and a parameter registered first that the forward pass never uses.
struct Stack : torch::nn::Module {
  Stack() {
    unused = register_parameter("unused", torch::randn({3}));
    for (int i = 0; i < 4; ++i) layers.push_back(register_module("l" + std::to_string(i), torch::nn::Linear(6, 6)));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x.square().sum();
  }
  torch::Tensor unused;
  std::vector<torch::nn::Linear> layers;
};
}  // namespace

TEST(Distributed, GradientBucketsStartDuringBackwardInOrderAndSumEveryGradient) {
  torch::manual_seed(4);
  Stack m;
  auto params = m.parameters();
  const auto x1 = torch::randn({5, 6}), x2 = torch::randn({5, 6});
  // The reference: each parameter's gradient over both micro-batches, on one rank.
  m.forward(x1).backward();
  m.forward(x2).backward();
  std::vector<torch::Tensor> ref;
  for (auto& p : params) ref.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
  ASSERT_FALSE(ref[0].defined());  // `unused` has none
  for (const bool overlap : {true, false}) {
    for (const int64_t bucket_bytes : {int64_t{0}, int64_t{200}, int64_t{1} << 20}) {
      TwinGroup g;
      train::GradientSync sync(params, g, bucket_bytes, overlap);
      const auto layout = sync.layout();
      // Reverse parameter order; `unused` (registered first) is in the last bucket.
      EXPECT_EQ(layout.front().front(), params.size() - 1);
      EXPECT_EQ(layout.back().back(), size_t{0});
      if (bucket_bytes == 0) EXPECT_EQ(sync.buckets(), static_cast<int64_t>(params.size()));
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      m.forward(x1).backward();  // an earlier micro-batch: no bucket starts
      EXPECT_TRUE(g.started.empty());
      sync.arm();
      g.in_backward = true;
      m.forward(x2).backward();
      g.in_backward = false;
      auto stats = torch::tensor({3.0, 1.5}, torch::kFloat64);
      g.flags_from = 2;
      sync.finish(stats);
      EXPECT_EQ(stats[0].item<double>(), 6.0);
      EXPECT_EQ(stats[1].item<double>(), 3.0);
      // Every bucket started once, in layout order; with overlap all but the one holding `unused`
      // started inside backward (it has no gradient, so it starts after).
      ASSERT_EQ(g.started.size(), layout.size());
      int64_t during = 0;
      for (size_t b = 0; b < layout.size(); ++b) {
        int64_t numel = 0;
        for (size_t i : layout[b]) numel += params[i].numel();
        EXPECT_EQ(g.started[b].first, numel) << b;
        during += g.started[b].second;
      }
      EXPECT_EQ(during, sync.started_in_backward());
      EXPECT_EQ(during, overlap ? sync.buckets() - 1 : 0) << bucket_bytes;
      for (size_t i = 1; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(params[i].grad(), 2 * ref[i])) << i;
      EXPECT_FALSE(params[0].grad().defined());  // no rank had one
      // When the other rank has a gradient for `unused`, this one gets the sum (its own counts zero).
      g.other_has_all = true;
      g.started.clear();
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      sync.arm();
      m.forward(x1).backward();
      sync.finish(stats);
      ASSERT_TRUE(params[0].grad().defined());
      EXPECT_EQ(params[0].grad().abs().sum().item<double>(), 0.0);
      EXPECT_EQ(g.started.size(), layout.size());
    }
  }
  // Without a GradientSync the hooks are gone: a backward pass starts nothing.
  TwinGroup g;
  { train::GradientSync sync(params, g, 0, true); }
  m.forward(x1).backward();
  EXPECT_TRUE(g.started.empty());
}

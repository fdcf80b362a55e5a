// GPU checks (label gpu), each skipped where no CUDA device is usable: the LM moved to the GPU (itself
// or through a parent's to()) gives the CPU's logits, and a bf16-autocast training step of the RQ-VAE
// and of the LM is finite, and a bf16 training run on CUDA stopped and resumed ends with the weights
// of the straight run.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "vimo/core/run.h"
#include "vimo/lm/model.h"
#include "vimo/tokenizer/rqvae.h"
#include "vimo/train/trainer.h"

namespace {

#define VIMO_REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no usable CUDA device"

vimo::lm::LlamaConfig tiny_lm() {
  vimo::lm::LlamaConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  return c;
}

struct Bf16Autocast {
  Bf16Autocast() {
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  }
  ~Bf16Autocast() {
    at::autocast::set_autocast_enabled(at::kCUDA, false);
    at::autocast::clear_cache();
  }
};

bool grads_finite(torch::nn::Module& m) {
  for (const auto& p : m.parameters())
    if (p.grad().defined() && !torch::isfinite(p.grad()).all().item<bool>()) return false;
  return true;
}

// The logits of `cpu` and of `gpu` (the same weights, moved) on the same host ids agree; `device_ids`:
// hand the GPU model ids already on the device (else host ids, which the model moves).
void expect_same_logits(vimo::lm::LlamaForCausalLM& cpu, vimo::lm::LlamaForCausalLM& gpu, bool device_ids) {
  cpu->eval();
  gpu->eval();
  torch::NoGradGuard ng;
  auto ids = torch::randint(0, 97, {2, 12}, torch::kLong);
  auto a = cpu->forward(ids), b = gpu->forward(device_ids ? ids.cuda() : ids).cpu();
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-4)) << (a - b).abs().max().item<double>();
}

}  // namespace

TEST(GpuLm, ToDeviceGivesTheCpuLogits) {
  VIMO_REQUIRE_CUDA();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  vimo::lm::LlamaForCausalLM cpu(tiny_lm(), f32), gpu(tiny_lm(), f32);
  cpu->init_weights(0.1, 7);
  gpu->init_weights(0.1, 7);
  gpu->to(torch::Device(torch::kCUDA, 0));
  expect_same_logits(cpu, gpu, true);
}

TEST(GpuLm, ParentModuleToMovesTheLmWholeAndHostIdsAreMoved) {
  VIMO_REQUIRE_CUDA();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  vimo::lm::LlamaForCausalLM cpu(tiny_lm(), f32), gpu(tiny_lm(), f32);
  cpu->init_weights(0.1, 9);
  gpu->init_weights(0.1, 9);
  torch::nn::Module parent;
  parent.register_module("lm", gpu.ptr());
  parent.to(torch::Device(torch::kCUDA, 0));
  EXPECT_TRUE(gpu->device().is_cuda());
  EXPECT_TRUE(gpu->make_cache(1, 8).k.at(0).is_cuda());
  expect_same_logits(cpu, gpu, false);  // host ids: checked there, moved by the model
}

TEST(GpuLm, Bf16AutocastStepIsFinite) {
  VIMO_REQUIRE_CUDA();
  vimo::lm::LlamaForCausalLM m(tiny_lm(), torch::TensorOptions().dtype(torch::kFloat32));
  m->init_weights(0.1, 3);
  m->to(torch::Device(torch::kCUDA, 0));
  for (auto& p : m->parameters()) p.set_requires_grad(true);
  m->train();
  auto ids = torch::randint(0, 97, {2, 16}, torch::kLong).cuda();
  torch::Tensor loss;
  {
    Bf16Autocast ac;
    auto logits = m->forward(ids);
    loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, 15).reshape({-1, 97}).to(torch::kFloat32),
                                                ids.narrow(1, 1, 15).reshape({-1}));
  }
  loss.backward();
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_TRUE(grads_finite(*m));
}

TEST(GpuTokenizer, Bf16AutocastStepIsFinite) {
  VIMO_REQUIRE_CUDA();
  vimo::tokenizer::RqvaeOptions o;
  o.width = 16;
  o.depth = 2;
  o.code_dim = 8;
  o.codebook_size = 16;
  o.num_quantizers = 2;
  vimo::tokenizer::Rqvae m(o);
  m->to(torch::Device(torch::kCUDA, 0));
  m->train();
  auto x = torch::randn({4, 16, o.feature_dim}, torch::Device(torch::kCUDA, 0));
  torch::Tensor loss;
  {
    Bf16Autocast ac;
    auto out = m->forward(x);
    loss = torch::smooth_l1_loss(out.recon_n.to(torch::kFloat32), m->normalizer->normalize(x)) + out.commit;
  }
  loss.backward();
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_TRUE(grads_finite(*m));
  EXPECT_EQ(m->quantizer->layers->at<vimo::tokenizer::QuantizerImpl>(0).codebook.scalar_type(), torch::kFloat32);
}

namespace {
// A tiny LM on the GPU learning to continue random token rows (host ids, drawn from a generator seeded
// by the batch index), plus noise drawn on the device, so the CUDA generator's state must resume too.
class GpuLmTask : public vimo::train::Task {
 public:
  GpuLmTask() : lm(tiny_lm(), torch::TensorOptions().dtype(torch::kFloat32)) {
    lm->init_weights(0.1, 11);
    lm->to(torch::Device(torch::kCUDA, 0));
  }
  torch::nn::Module& module() override { return *lm; }
  vimo::train::StepOutput forward(int64_t) override {
    auto g = at::make_generator<at::CPUGeneratorImpl>(500 + batches++);
    auto ids = torch::randint(0, 97, {4, 16}, g);
    auto logits = lm->forward(ids);  // [4, 16, 97]
    auto noise = torch::randn({}, logits.options().dtype(torch::kFloat32)) * 1e-3;
    auto loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, 15).reshape({-1, 97}).to(torch::kFloat32),
                                                     ids.narrow(1, 1, 15).reshape({-1}).cuda()) + noise;
    return {loss, {{"noise", noise}}, 4};
  }
  void after_step(int64_t step) override {
    if (step + 1 == stop_at) vimo::core::request_stop_for_test(SIGINT);
  }
  std::map<std::string, double> validate() override { return {}; }
  nlohmann::json data_state() const override { return {{"batches", batches}}; }
  void load_data_state(const nlohmann::json& s) override { batches = s.at("batches").get<int64_t>(); }
  vimo::lm::LlamaForCausalLM lm;
  int64_t batches = 0, stop_at = -1;
};

vimo::train::TrainerOptions gpu_options(const std::string& dir) {
  vimo::train::TrainerOptions o;
  o.run_dir = dir;
  o.device = torch::Device(torch::kCUDA, 0);
  o.train.steps = 6;
  o.train.precision = "bf16";
  o.train.val_every = 0;
  o.train.ckpt_every = 100;
  o.train.log_every = 2;
  o.optim.lr = 1e-3;
  o.optim.warmup_steps = 1;
  return o;
}
}  // namespace

TEST(GpuTrainer, Bf16StopAndResumeOnCudaGivesTheSameWeights) {
  VIMO_REQUIRE_CUDA();
  const std::string root = "/tmp/vimo_gpu_resume_" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("rm -rf " + root).c_str()), 0);
  torch::manual_seed(3);
  GpuLmTask straight;
  ASSERT_EQ(vimo::train::Trainer(gpu_options(root + "/a"), straight).fit(), vimo::kExitOk);
  torch::manual_seed(3);
  GpuLmTask first;
  first.stop_at = 3;
  ASSERT_EQ(vimo::train::Trainer(gpu_options(root + "/b"), first).fit(), vimo::kExitInterrupted);
  vimo::core::request_stop_for_test(0);
  torch::manual_seed(99);  // everything must come from the checkpoint
  GpuLmTask second;
  vimo::train::Trainer t(gpu_options(root + "/b"), second);
  ASSERT_EQ(t.fit(), vimo::kExitOk);
  EXPECT_EQ(t.step(), 6);
  auto a = straight.lm->named_parameters(), b = second.lm->named_parameters();
  double worst = 0;
  for (const auto& p : a) worst = std::max(worst, (p.value() - b[p.key()]).abs().max().item<double>());
  EXPECT_LE(worst, 1e-5) << "max weight difference after resume on CUDA";
  std::system(("rm -rf " + root).c_str());
}

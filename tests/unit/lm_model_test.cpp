// Unit tests of the Llama decoder: KV cache vs recompute, padding, RoPE scaling, vocabulary
// resizing, LoRA merge/save/load, checkpoint round trips and error messages.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/lm/gemv.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/tools.h"

namespace fs = std::filesystem;
using namespace vimo;
using namespace vimo::lm;

namespace {
LlamaConfig tiny(bool tied = false) {
  torch::set_num_threads(1);  // tiny tensors: more threads only add synchronisation on a busy machine
  LlamaConfig c;
  c.vocab_size = 97;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.rope_type = "llama3";
  c.rope_factor = 8;
  c.original_max_position_embeddings = 16;
  c.tie_word_embeddings = tied;
  return c;
}
// Files only, one level deep (fs::remove_all can resolve to an incompatible copy inside libtorch).
std::string tmpdir(const std::string& name) {
  auto d = fs::path("lm_unit_tmp") / name;
  if (fs::exists(d))
    for (const auto& e : fs::directory_iterator(d)) fs::remove(e.path());
  fs::create_directories(d);
  return d.string();
}
double maxdiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
template <class F> std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(LmRope, ScalingMatchesPublishedFormulas) {
  LlamaConfig c;
  c.head_dim = 4;
  c.rope_theta = 10000;
  auto d = rope_inv_freq(c);  // 1/10000^(0/4), 1/10000^(2/4)
  EXPECT_NEAR(d[0].item<double>(), 1.0, 1e-7);
  EXPECT_NEAR(d[1].item<double>(), 0.01, 1e-7);
  c.rope_type = "linear";
  c.rope_factor = 2;
  EXPECT_NEAR(rope_inv_freq(c)[1].item<double>(), 0.005, 1e-7);
  // Llama 3.1: theta 500000, factor 8, window 8192: short wavelengths kept, long ones divided by 8.
  LlamaConfig l;
  l.head_dim = 128;
  l.rope_theta = 500000;
  l.rope_type = "llama3";
  l.rope_factor = 8;
  l.original_max_position_embeddings = 8192;
  auto plain = 1.0 / std::pow(500000.0, 126.0 / 128.0);
  auto s = rope_inv_freq(l);
  EXPECT_NEAR(s[0].item<double>(), 1.0, 1e-7);
  EXPECT_NEAR(s[63].item<double>(), plain / 8, plain * 1e-5);
}

TEST(LmGemv, SmallLinearMatchesAtLinear) {
  torch::manual_seed(5);
  torch::NoGradGuard g;
  for (int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (int64_t M = 1; M <= kSmallLinearMaxRows; ++M)
      for (int64_t K : {7, 64, 203})  // 7 and 203: the k-tail after the 8-wide loop
        for (int64_t N : {1, 5, 130}) {
          auto x = torch::randn({M, 1, K}), w = torch::randn({N, K}), b = torch::randn({N});
          ASSERT_TRUE(small_linear_applies(x, w));
          auto ref = at::linear(x.to(torch::kFloat64), w.to(torch::kFloat64), b.to(torch::kFloat64));
          auto y = small_linear(x, w, b);
          ASSERT_EQ(y.sizes(), ref.sizes());
          EXPECT_LT(maxdiff(y.to(torch::kFloat64), ref), 2e-5 * std::sqrt(static_cast<double>(K)))
              << M << "x" << K << " N " << N;
          // bfloat16 weights and activations: the float32 result of the same rounded operands, rounded once.
          auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
          auto refb = at::linear(xb.to(torch::kFloat64), wb.to(torch::kFloat64)).to(torch::kBFloat16);
          EXPECT_LE(maxdiff(small_linear(xb, wb, {}).to(torch::kFloat64), refb.to(torch::kFloat64)),
                    refb.abs().max().item<double>() / 128)
              << "bf16 " << M << "x" << K << " N " << N;
        }
  }
  auto w = torch::randn({8, 16}, torch::requires_grad());
  EXPECT_FALSE(small_linear_applies(torch::randn({5, 16}), w.detach()));  // too many rows: the GEMM
  {
    torch::AutoGradMode on(true);
    EXPECT_FALSE(small_linear_applies(torch::randn({1, 16}), w));  // autograd must see at::linear
  }
  EXPECT_FALSE(small_linear_applies(torch::randn({1, 16}, torch::kFloat64), w.detach().to(torch::kFloat64)));
}

TEST(LmModel, KvCacheGenerationEqualsFullRecompute) {
  auto m = build_random(tiny(), 0.3, 1);
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.greedy = true;
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 9, 4, 33}, {7, 2}, {60, 61, 62}};
  auto cached = generate(m, prompts, o);
  o.use_cache = false;
  auto full = generate(m, prompts, o);
  EXPECT_EQ(cached, full);
  // Each sequence alone (no padding) gives the same tokens as inside the padded batch.
  o.use_cache = true;
  for (size_t b = 0; b < prompts.size(); ++b) EXPECT_EQ(generate(m, {prompts[b]}, o)[0], cached[b]);
  // Sampling with the same seed is reproducible, and top_k = 1 is greedy.
  o.greedy = false;
  o.top_k = 1;
  EXPECT_EQ(generate(m, prompts, o), cached);
}

TEST(LmModel, CachedLogitsEqualFullForward) {
  auto m = build_random(tiny(), 0.3, 2);
  m->eval();
  torch::NoGradGuard g;
  torch::manual_seed(11);  // fixed ids: the same inputs on every run
  auto ids = torch::randint(0, 97, {2, 12}, torch::kLong);
  auto full = m->forward(ids);
  auto cache = m->make_cache(2, 12);
  ForwardOptions f;
  f.cache = &cache;
  auto a = m->forward(ids.narrow(1, 0, 5), f);
  auto b = m->forward(ids.narrow(1, 5, 3), f);  // a chunk after a prefix: explicit causal offset
  std::vector<torch::Tensor> parts = {a, b};
  for (int t = 8; t < 12; ++t) parts.push_back(m->forward(ids.narrow(1, t, 1), f));
  EXPECT_LT(maxdiff(torch::cat(parts, 1), full), 1e-5);
}

TEST(LmModel, TrainingGroupedAttentionEqualsRepeatedHeads) {
  // train() hands grouped K/V to SDPA (enable_gqa); eval() repeats them. Same logits and gradients.
  auto m = build_random(tiny(), 0.3, 4);
  torch::manual_seed(12);
  auto ids = torch::randint(0, 97, {2, 10}, torch::kLong);
  auto run = [&](bool training) {
    m->train(training);
    m->zero_grad();
    auto logits = m->forward(ids);
    logits.pow(2).mean().backward();
    auto* attn = m->model->layers[0]->as<DecoderLayerImpl>()->self_attn.get();
    return std::make_pair(logits.detach(), attn->k_proj->weight.grad().clone());
  };
  auto [ref_logits, ref_grad] = run(false);
  auto [logits, grad] = run(true);
  EXPECT_LT(maxdiff(logits, ref_logits), 1e-5);
  EXPECT_LT(maxdiff(grad, ref_grad), 1e-5 * (1 + ref_grad.abs().max().item<double>()));
  EXPECT_GT(ref_grad.abs().max().item<double>(), 0);
}

TEST(LmModel, PaddedBatchEqualsSingleSequences) {
  auto m = build_random(tiny(true), 0.3, 3);
  std::vector<std::vector<int64_t>> seqs = {{3, 4, 5, 6, 7, 8}, {9, 10}, {11, 12, 13, 14}};
  for (const std::string side : {"left", "right"}) {
    auto batch = forward_padded(m, seqs, side);
    for (size_t b = 0; b < seqs.size(); ++b) {
      auto one = forward_padded(m, {seqs[b]});
      const int64_t n = static_cast<int64_t>(seqs[b].size());
      EXPECT_LT(maxdiff(batch[b].narrow(0, 0, n), one[0].narrow(0, 0, n)), 1e-5) << side << " " << b;
    }
  }
}

TEST(LmModel, TokenIdsOutOfRangeAreRejected) {
  auto m = build_random(tiny(), 0.3, 4);
  auto e = error_of([&] { m->forward(torch::tensor({{1, 97}}, torch::kLong)); });
  EXPECT_NE(e.find("token id 97 is out of range [0, 97)"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { parse_tokens("1 x 3"); }).find("'x'"), std::string::npos);
}

TEST(LmModel, ModuleToMovesTheRotaryTablesAndOptionsAlsoThroughAParent) {
  // A parent module's to() reaches the LM through Module::to: its dtype (that of new KV caches) follows
  // the weights, and the float64 model gives the float32 one's logits.
  auto m = build_random(tiny(), 0.3, 6);
  auto ids = torch::tensor({{3, 1, 4, 1, 5, 9, 2, 6}}, torch::kLong);
  torch::NoGradGuard ng;
  m->eval();
  const auto ref = m->forward(ids).to(torch::kFloat64);
  torch::nn::Module parent;
  parent.register_module("lm", m.ptr());
  parent.to(torch::kFloat64);
  EXPECT_EQ(m->dtype(), torch::kFloat64);
  EXPECT_EQ(m->model->embed_tokens->weight.scalar_type(), torch::kFloat64);
  auto cache = m->make_cache(1, 16);
  EXPECT_EQ(cache.k.at(0).scalar_type(), torch::kFloat64);
  const auto y = m->forward(ids);
  EXPECT_EQ(y.scalar_type(), torch::kFloat64);
  EXPECT_LT(maxdiff(y, ref), 1e-4);
  m->to(torch::kCPU, torch::kFloat32);
  EXPECT_EQ(m->dtype(), torch::kFloat32);
  EXPECT_EQ(m->make_cache(1, 4).k.at(0).scalar_type(), torch::kFloat32);
  EXPECT_LT(maxdiff(m->forward(ids).to(torch::kFloat64), ref), 1e-6);
}

// The plain-loop sampler of CPU logits draws from sampling_probs (the torch-op processing that GPU
// logits take): every token's frequency over 20,000 draws within 4.5 sigma of its probability, none
// of a dropped token; greedy is argmax; the same seed gives the same draws.
TEST(LmSampling, CpuDrawsFollowTheProcessedDistribution) {
  torch::manual_seed(0);
  const int64_t V = 40, N = 20000;
  auto logits = torch::randn({2, V}) * 2;
  struct Case { double t; int64_t k; double p; };
  for (const Case c : {Case{1.0, 0, 1.0}, Case{0.7, 10, 1.0}, Case{1.3, 0, 0.8}, Case{1.0, 15, 0.9}}) {
    lm::GenerateOptions o;
    o.temperature = c.t;
    o.top_k = c.k;
    o.top_p = c.p;
    auto probs = lm::sampling_probs(logits, o);  // [2, V]
    torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
    auto counts = torch::zeros({2, V}, torch::kDouble);
    for (int64_t i = 0; i < N; ++i) {
      auto ids = lm::sample_next(logits, o, gen);
      for (int64_t b = 0; b < 2; ++b) counts[b][ids[b].item<int64_t>()] += 1;
    }
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t j = 0; j < V; ++j) {
        const double p = probs[b][j].item<double>(), f = counts[b][j].item<double>() / N;
        if (p == 0) EXPECT_EQ(f, 0) << "t " << c.t << " k " << c.k << " p " << c.p << " row " << b << " id " << j;
        else EXPECT_LE(std::abs(f - p), 4.5 * std::sqrt(p * (1 - p) / N) + 1e-12) << c.t << " " << c.k << " " << c.p << " " << j;
      }
    torch::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(9), g2 = at::make_generator<at::CPUGeneratorImpl>(9);
    EXPECT_TRUE(torch::equal(lm::sample_next(logits, o, g1), lm::sample_next(logits, o, g2)));
  }
  lm::GenerateOptions greedy;
  greedy.greedy = true;
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  EXPECT_TRUE(torch::equal(lm::sample_next(logits, greedy, gen), logits.argmax(-1)));
  auto nan = logits.clone();
  nan[1].fill_(std::numeric_limits<float>::quiet_NaN());
  lm::GenerateOptions o;
  EXPECT_THROW(lm::sample_next(nan, o, gen), Error);
}

TEST(LmVocab, NewRowsFromStatisticsAndTrainableWhenFrozen) {
  auto m = build_random(tiny(), 0.3, 5);
  auto old_w = m->model->embed_tokens->weight.detach().clone();
  auto ids = torch::tensor({{1, 2, 3}}, torch::kLong);
  auto before = m->forward(ids).detach();
  m->resize_vocab(120, 7);
  EXPECT_EQ(m->config().vocab_size, 120);
  auto tail = m->model->embed_tokens->tail.detach();
  ASSERT_EQ(tail.size(0), 23);
  // The new rows are drawn from N(mean, 1e-9 * covariance) of the old rows (transformers' rule):
  // each within a few 1e-4.5 standard deviations of the mean, and not all equal.
  EXPECT_EQ(tail.scalar_type(), torch::kFloat32);
  EXPECT_LT(maxdiff(tail, old_w.mean(0).unsqueeze(0).expand_as(tail)), 6 * 0.3 * std::sqrt(1e-9));
  EXPECT_GT(tail.std(0).mean().item<double>(), 0.1 * 0.3 * std::sqrt(1e-9));
  auto after = m->forward(ids).detach();
  EXPECT_LT(maxdiff(after.narrow(2, 0, 97), before), 1e-6);  // old ids unchanged
  EXPECT_EQ(after.size(2), 120);
  m->freeze_base();
  auto loss = m->forward(torch::tensor({{1, 100, 119}}, torch::kLong)).sum();
  loss.backward();
  EXPECT_TRUE(m->model->embed_tokens->tail.grad().defined());
  EXPECT_GT(m->model->embed_tokens->tail.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(m->lm_head->tail.grad().defined());
  EXPECT_FALSE(m->model->embed_tokens->weight.grad().defined());
  EXPECT_FALSE(m->lm_head->weight.grad().defined());
  // Saved checkpoints hold the full matrix under the HF name.
  auto dir = tmpdir("resized");
  save_pretrained(m, dir);
  auto r = load_pretrained(dir);
  EXPECT_EQ(r->config().vocab_size, 120);
  EXPECT_LT(maxdiff(r->forward(ids).detach(), after), 1e-6);
}

TEST(LmLora, ZeroAtStartMergeUnmergeAndAdapterRoundTrip) {
  auto m = build_random(tiny(), 0.3, 6);
  auto ids = torch::tensor({{4, 8, 15, 16, 23, 42}}, torch::kLong);
  m->eval();
  auto base = m->forward(ids).detach();
  auto q0 = m->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight.detach().clone();
  LoraOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.targets = {"q_proj", "v_proj", "down_proj"};
  EXPECT_EQ(apply_lora(m, o), 6);
  EXPECT_LT(maxdiff(m->forward(ids).detach(), base), 1e-7);  // B = 0
  {
    torch::NoGradGuard g;
    for (auto& p : m->projections(o.targets)) p->lora_B->weight.normal_(0, 0.2);
  }
  auto adapted = m->forward(ids).detach();
  EXPECT_GT(maxdiff(adapted, base), 1e-3);
  // Only adapters train.
  for (auto& item : m->named_parameters())
    EXPECT_EQ(item.value().requires_grad(), item.key().find("lora_") != std::string::npos) << item.key();
  auto dir = tmpdir("adapter");
  save_adapter(m, dir);
  merge_lora(m);
  EXPECT_LT(maxdiff(m->forward(ids).detach(), adapted), 1e-5);
  unmerge_lora(m);
  EXPECT_LT(maxdiff(m->model->layers[0]->as<DecoderLayerImpl>()->self_attn->q_proj->weight.detach(), q0), 1e-6);
  auto fresh = build_random(tiny(), 0.3, 6);
  fresh->eval();
  auto lo = load_adapter(fresh, dir);
  EXPECT_EQ(lo.rank, 4);
  EXPECT_LT(maxdiff(fresh->forward(ids).detach(), adapted), 1e-6);
  auto st = core::SafeTensors::open(dir + "/adapter_model.safetensors");
  EXPECT_TRUE(st.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
}

TEST(LmCheckpoint, RoundTripSingleShardedAndBf16) {
  auto m = build_random(tiny(), 0.3, 8);
  m->eval();
  auto ids = torch::tensor({{1, 2, 3, 4}}, torch::kLong);
  auto ref = m->forward(ids).detach();
  auto one = tmpdir("single"), sharded = tmpdir("sharded"), again = tmpdir("again");
  save_pretrained(m, one);
  SaveOptions so;
  so.max_shard_bytes = 20000;
  save_pretrained(m, sharded, so);
  ASSERT_TRUE(fs::exists(sharded + "/model.safetensors.index.json"));
  ASSERT_FALSE(fs::exists(sharded + "/model.safetensors"));
  CheckpointLayout layout;
  auto r = load_pretrained(sharded, {}, &layout);
  EXPECT_GT(layout.weight_map.size(), 0u);
  EXPECT_EQ(maxdiff(r->forward(ids).detach(), ref), 0);
  save_pretrained(r, again, {}, &layout);  // same layout back
  auto a = core::SafeTensors::open(sharded + "/model.safetensors.index.json");
  auto b = core::SafeTensors::open(again + "/model.safetensors.index.json");
  for (const auto& n : a.names()) {
    EXPECT_EQ(fs::path(a.info(n).file).filename(), fs::path(b.info(n).file).filename()) << n;
    EXPECT_TRUE(torch::equal(a.get(n), b.get(n))) << n;
  }
  SaveOptions bf;
  bf.dtype = torch::kBFloat16;
  auto half = tmpdir("bf16");
  save_pretrained(m, half, bf);
  auto h = load_pretrained(half);
  EXPECT_EQ(h->dtype(), torch::kBFloat16);
  EXPECT_EQ(core::SafeTensors::open(half + "/model.safetensors").info("model.norm.weight").dtype, "BF16");
  LoadOptions as32;
  as32.dtype = torch::kFloat32;
  auto h32 = load_pretrained(half, as32);  // the bf16 file holds m's weights rounded to bf16
  auto rounded = m->model->layers[1]->as<DecoderLayerImpl>()->mlp->up_proj->weight.detach().to(torch::kBFloat16).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(h32->model->layers[1]->as<DecoderLayerImpl>()->mlp->up_proj->weight.detach(), rounded));
}

TEST(LmCheckpoint, BadInputErrorsNameTheProblem) {
  auto m = build_random(tiny(), 0.3, 9);
  auto dir = tmpdir("bad");
  save_pretrained(m, dir);
  auto cfg = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  auto write_cfg = [&](nlohmann::json j) { std::ofstream(dir + "/config.json") << j.dump(); };
  auto j = cfg;
  j["model_type"] = "gpt2";
  write_cfg(j);
  EXPECT_NE(error_of([&] { load_pretrained(dir); }).find("model_type 'gpt2' is not supported"), std::string::npos);
  j = cfg;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  write_cfg(j);
  EXPECT_NE(error_of([&] { load_pretrained(dir); }).find("rope type 'yarn' is not supported"), std::string::npos);
  j = cfg;
  j["intermediate_size"] = 64;
  write_cfg(j);
  auto e = error_of([&] { load_pretrained(dir); });
  EXPECT_NE(e.find("model.layers.0.mlp.gate_proj.weight is [48, 32] in the file, the config needs [64, 32]"), std::string::npos) << e;
  j = cfg;
  j["num_hidden_layers"] = 3;
  write_cfg(j);
  e = error_of([&] { load_pretrained(dir); });
  EXPECT_NE(e.find("lacks 9 tensor(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.2.self_attn.q_proj.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("model.layers.2.post_attention_layernorm.weight"), std::string::npos) << e;
}

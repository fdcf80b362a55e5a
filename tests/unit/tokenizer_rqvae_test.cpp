// RQ-VAE pieces against hand-computed values: nearest code, EMA update, dead-code reset,
// straight-through gradient, residual sums, shapes and parameter names.
#include <gtest/gtest.h>

#include <set>

#include "vimo/core/error.h"
#include "vimo/tokenizer/rqvae.h"

using namespace vimo::tokenizer;

namespace {
RqvaeOptions tiny() {
  RqvaeOptions o;
  o.width = 8;
  o.depth = 2;
  o.code_dim = 4;
  o.codebook_size = 8;
  o.num_quantizers = 3;
  return o;
}
}  // namespace

TEST(TokenizerQuantizer, NearestCodeIsTheClosestRow) {
  Quantizer q(3, 2, 0.5, 1.0);
  q->codebook.copy_(torch::tensor({{0.f, 0.f}, {1.f, 0.f}, {0.f, 2.f}}));
  auto idx = q->nearest(torch::tensor({{0.9f, 0.1f}, {0.1f, 1.2f}, {-0.2f, 0.1f}}));
  EXPECT_EQ(idx[0].item<int64_t>(), 1);
  EXPECT_EQ(idx[1].item<int64_t>(), 2);
  EXPECT_EQ(idx[2].item<int64_t>(), 0);
}

TEST(TokenizerQuantizer, EmaUpdateMatchesHandComputedValues) {
  // K=2, D=1, decay 0.5. Start: codebook {0, 10}, sums {0, 10}, counts {1, 1}.
  // Batch {1, 2, 9}: code 0 gets {1, 2} (sum 3, count 2), code 1 gets {9} (sum 9, count 1).
  // sums = 0.5*{0,10} + 0.5*{3,9} = {1.5, 9.5}; counts = 0.5*{1,1} + 0.5*{2,1} = {1.5, 1};
  // codebook = {1.5/1.5, 9.5/1} = {1, 9.5}.
  Quantizer q(2, 1, 0.5, 1.0);
  q->codebook.copy_(torch::tensor({{0.f}, {10.f}}));
  q->code_sum.copy_(torch::tensor({{0.f}, {10.f}}));
  q->inited.fill_(1);
  auto out = q->forward(torch::tensor({{1.f}, {2.f}, {9.f}}), true);
  EXPECT_EQ(out.indices[0].item<int64_t>(), 0);
  EXPECT_EQ(out.indices[2].item<int64_t>(), 1);
  EXPECT_NEAR(q->codebook[0][0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(q->codebook[1][0].item<float>(), 9.5f, 1e-6);
  EXPECT_NEAR(q->code_count[0].item<float>(), 1.5f, 1e-6);
  // Commitment = mean((x - q_old)^2) = ((1-0)^2 + (2-0)^2 + (9-10)^2) / 3 = 2.
  EXPECT_NEAR(out.commit.item<float>(), 2.0f, 1e-6);
}

TEST(TokenizerQuantizer, DeadCodeIsResetToABatchVector) {
  // Code 1 is never chosen: its count decays 1 -> 0.5 < threshold 1, so it becomes a batch row.
  Quantizer q(2, 1, 0.5, 1.0);
  q->codebook.copy_(torch::tensor({{0.f}, {100.f}}));
  q->code_sum.copy_(torch::tensor({{0.f}, {100.f}}));
  q->inited.fill_(1);
  q->forward(torch::tensor({{1.f}, {3.f}}), true);
  const float c1 = q->codebook[1][0].item<float>();
  EXPECT_TRUE(c1 == 1.f || c1 == 3.f) << c1;
  EXPECT_NEAR(q->codebook[0][0].item<float>(), (0.5f * 0 + 0.5f * 4) / (0.5f + 0.5f * 2), 1e-6);
}

TEST(TokenizerQuantizer, ResidualLayersQuantizeWhatIsLeft) {
  auto o = tiny();
  o.quantizer_dropout = 0;
  torch::manual_seed(0);
  ResidualQuantizer rq(o);
  for (int q = 0; q < 3; ++q) rq->layers->at<QuantizerImpl>(q).codebook.normal_();
  rq->eval();
  auto z = torch::randn({2, o.code_dim, 5});
  auto out = rq->forward(z);
  ASSERT_EQ(out.indices.sizes().vec(), (std::vector<int64_t>{2, 5, 3}));
  // By hand: layer q picks the nearest code to z minus the codes chosen so far.
  auto x = z.permute({0, 2, 1}).reshape({10, o.code_dim});
  auto residual = x.clone();
  auto sum = torch::zeros_like(x);
  for (int q = 0; q < 3; ++q) {
    auto cb = rq->layers->at<QuantizerImpl>(q).codebook;
    auto d = (residual.unsqueeze(1) - cb.unsqueeze(0)).pow(2).sum(-1);
    auto idx = d.argmin(1);
    EXPECT_TRUE(torch::equal(idx, out.indices.reshape({10, 3}).select(1, q)));
    residual -= cb.index_select(0, idx);
    sum += cb.index_select(0, idx);
  }
  EXPECT_TRUE(torch::allclose(out.quantized.permute({0, 2, 1}).reshape({10, o.code_dim}), sum, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(rq->lookup(out.indices), out.quantized, 1e-5, 1e-5));
}

TEST(TokenizerQuantizer, StraightThroughPassesTheGradientOnce) {
  auto o = tiny();
  o.quantizer_dropout = 0;
  ResidualQuantizer rq(o);
  rq->train();
  auto z = torch::randn({1, o.code_dim, 6}, torch::requires_grad());
  rq->forward(z).quantized.sum().backward();
  EXPECT_TRUE(torch::allclose(z.grad(), torch::ones_like(z)));
}

TEST(TokenizerQuantizer, DropoutUsesAPrefixOfLayers) {
  auto o = tiny();
  o.quantizer_dropout = 1.0;
  ResidualQuantizer rq(o);
  rq->train();
  auto out = rq->forward(torch::randn({1, o.code_dim, 4}));
  auto used = (out.indices.select(2, 0) >= 0).all().item<bool>();
  EXPECT_TRUE(used);
  EXPECT_TRUE((out.indices.select(2, 2) == -1).all().item<bool>());  // at most Q-1 layers
}

TEST(TokenizerRqvae, ShapesAndDownsampling) {
  Rqvae m(tiny());
  m->eval();
  auto x = torch::randn({2, 16, 262});
  auto out = m->forward(x);
  EXPECT_EQ(out.recon.sizes().vec(), x.sizes().vec());
  EXPECT_EQ(out.indices.sizes().vec(), (std::vector<int64_t>{2, 4, 3}));
  auto codes = m->encode(x);
  EXPECT_TRUE(torch::equal(codes, out.indices));
  EXPECT_TRUE(torch::allclose(m->decode(codes), out.recon, 1e-4, 1e-4));
  EXPECT_THROW(m->forward(torch::randn({1, 10, 262})), vimo::Error);  // not a multiple of 4
  EXPECT_THROW(m->forward(torch::randn({1, 16, 263})), vimo::Error);  // wrong feature dim
  EXPECT_THROW(m->decode(torch::full({1, 4, 3}, 8, torch::kLong)), vimo::Error);  // code >= K
}

TEST(TokenizerRqvae, ParameterNamesFollowTheReferenceLayout) {
  Rqvae m(tiny());
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  for (const auto& b : m->named_buffers()) names.insert(b.key());
  for (const char* n : {"encoder.model.0.weight", "encoder.model.2.0.weight", "encoder.model.2.1.model.0.conv1.weight",
                        "encoder.model.4.weight", "quantizer.layers.0.codebook", "quantizer.layers.2.code_count",
                        "decoder.model.2.0.model.1.conv2.bias", "decoder.model.2.2.weight", "decoder.model.6.weight",
                        "normalizer.mean"})
    EXPECT_TRUE(names.count(n)) << n;
}

TEST(TokenizerNormalizer, RootRelativeLayoutIsHandComputedAndInvertible) {
  // Root (joint 0) at (1, 2, 3), joint 1 at (1.5, 2, 3.25): the layout keeps the root and stores
  // joint 1 as (0.5, 0, 0.25); dims from 66 on pass through unchanged.
  Normalizer n(262, true);
  auto x = torch::randn({2, 5, 262});
  x.index_put_({0, 0, torch::indexing::Slice(0, 6)}, torch::tensor({1.f, 2.f, 3.f, 1.5f, 2.f, 3.25f}));
  auto l = n->to_model_layout(x);
  EXPECT_TRUE(torch::allclose(l[0][0].narrow(0, 0, 6), torch::tensor({1.f, 2.f, 3.f, 0.5f, 0.f, 0.25f})));
  EXPECT_TRUE(torch::equal(l.narrow(-1, 66, 196), x.narrow(-1, 66, 196)));
  EXPECT_TRUE(torch::allclose(n->from_model_layout(l), x, 1e-5, 1e-6));
  n->mean.uniform_(-1, 1);
  n->std.uniform_(0.5, 2);
  EXPECT_TRUE(torch::allclose(n->denormalize(n->normalize(x)), x, 1e-5, 1e-5));
  // Off: the identity layout, plain (x - mean) / std.
  Normalizer plain(262, false);
  EXPECT_TRUE(torch::equal(plain->to_model_layout(x), x));
}

TEST(TokenizerNormalizer, ModelStatsAreThoseOfTheRootRelativeLayout) {
  std::vector<torch::Tensor> clips = {torch::randn({30, 2, 262}), torch::randn({17, 2, 262}) * 3 + 1};
  auto mean = torch::randn({262}), sd = torch::rand({262}) + 0.5;
  auto [m, s] = model_stats(clips, mean, sd, true);
  Normalizer n(262, true);
  auto all = n->to_model_layout(torch::cat({clips[0].reshape({-1, 262}), clips[1].reshape({-1, 262})}));
  EXPECT_TRUE(torch::allclose(m.narrow(0, 0, 66), all.mean(0).narrow(0, 0, 66), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(s.narrow(0, 0, 66), all.std(0).narrow(0, 0, 66), 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(m.narrow(0, 66, 196), mean.narrow(0, 66, 196)));  // the dataset's, untouched
  EXPECT_TRUE(torch::equal(s.narrow(0, 66, 196), sd.narrow(0, 66, 196)));
  auto [m0, s0] = model_stats(clips, mean, sd, false);
  EXPECT_TRUE(torch::equal(m0, mean) && torch::equal(s0, sd));
}

// Embedding metrics (R-precision, MM-Dist, Diversity, MultiModality), protocols, draws; the evaluator's loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/eval/embedding_metrics.h"
#include "vimo/eval/evaluator.h"
#include "vimo/eval/metric_protocol.h"

using namespace vimo::eval;

namespace {
torch::Tensor m(std::initializer_list<double> v, int64_t cols) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64).view({-1, cols});
}
}  // namespace

TEST(EvalEmbeddingMetrics, DistanceMatrixAndRetrievalRanks) {
  EXPECT_TRUE(torch::allclose(euclidean_distance_matrix(m({0, 0, 3, 4}, 2), m({0, 0}, 2)), m({0, 5}, 1)));
  // Row 0's own motion is nearest; rows 1 and 2 find theirs third.
  auto text = m({0, 0, 10, 0, 0, 10}, 2), motion = m({1, 0, 0, 10.5, 10, 1}, 2);
  EXPECT_EQ(top_k_hits(text, motion, 3), (std::vector<int64_t>{1, 1, 3}));
  const auto r = r_precision(text, motion, 3);
  EXPECT_NEAR(r[0], 1.0 / 3, 1e-12);
  EXPECT_NEAR(r[2], 1.0, 1e-12);
  EXPECT_NEAR(mm_dist(text, motion), (1 + std::sqrt(210.25) + std::sqrt(181.0)) / 3, 1e-9);
}

TEST(EvalEmbeddingMetrics, TiesRankLikeAStableSort) {
  auto z = torch::zeros({4, 3}, torch::kFloat64);  // every distance 0: row i's own motion sorts at i
  EXPECT_EQ(top_k_hits(z, z, 3), (std::vector<int64_t>{1, 2, 3}));
}

TEST(EvalEmbeddingMetrics, DiversityAndMultimodalityUseTheGivenDrawsAndScaling) {
  auto e = m({0, 0, 3, 4}, 2);
  auto first = torch::tensor({0, 1}, torch::kLong), second = torch::tensor({1, 1}, torch::kLong);
  EXPECT_NEAR(diversity(e, first, second), 2.5, 1e-12);        // (5 + 0) / 2
  EXPECT_NEAR(diversity(e, first, second, 6, 2), 7.5, 1e-12);  // InterGen's scaling: x3
  auto mm = e.unsqueeze(0).repeat({3, 1, 1});                  // [T=3, K=2, D=2]
  EXPECT_NEAR(multimodality(mm, torch::tensor({0}), torch::tensor({1})), 5.0, 1e-12);
  EXPECT_THROW(diversity(e, torch::tensor({2}), torch::tensor({0})), vimo::Error);
  EXPECT_THROW(diversity(e, torch::tensor({0, 1}), torch::tensor({0})), vimo::Error);
  auto nan = e.clone();
  nan[1][0] = std::nan("");
  EXPECT_THROW(mm_dist(nan, e), vimo::Error);
}

TEST(EvalEmbeddingMetrics, ProtocolsDifferWhereTheReferencesDo) {
  const auto ig = metric_protocol("intergen"), im = metric_protocol("intermask");
  EXPECT_EQ(ig.batch_size, 288);
  EXPECT_EQ(im.batch_size, 96);
  EXPECT_EQ(ig.mm_scale, 1.0);
  EXPECT_EQ(im.mm_scale / im.mm_divide, 3.0);
  EXPECT_EQ(metric_protocol("intermask-interx").fid_scale, 1.0);
  EXPECT_THROW(metric_protocol("t2m"), vimo::Error);
}

TEST(EvalEmbeddingMetrics, DrawsAreSeededPermutationsAndChoicesWithoutReplacement) {
  auto p = metric_protocol("intergen");
  p.batch_size = 10, p.diversity_times = 15, p.mm_times = 4;
  const auto a = draw_replication(37, 20, 6, p, 5, 2), b = draw_replication(37, 20, 6, p, 5, 2);
  const auto c = draw_replication(37, 20, 6, p, 5, 3);
  EXPECT_TRUE(torch::equal(a.order, b.order));
  EXPECT_FALSE(torch::equal(a.order, c.order));
  EXPECT_TRUE(torch::equal(std::get<0>(a.order.sort()), torch::arange(37)));
  EXPECT_EQ(std::get<0>(torch::_unique(a.div_first)).numel(), 15);
  EXPECT_LT(a.div_first.max().item<int64_t>(), 30);  // rows of the 3 full batches only
  EXPECT_EQ(std::get<0>(torch::_unique(a.mm_first)).numel(), 4);
  EXPECT_THROW(draw_replication(37, 0, 3, p, 5, 0), vimo::Error);  // 4 of 3 generations
}

TEST(EvalEmbeddingMetrics, ReplicationScoresDropTheLastPartialBatch) {
  torch::manual_seed(0);
  auto p = metric_protocol("intergen");
  p.batch_size = 3, p.diversity_times = 2, p.mm_times = 2;
  EmbeddingSet e{torch::randn({7, 4}), torch::randn({7, 4}), torch::randn({8, 4}), torch::randn({2, 3, 4})};
  const auto d = draw_replication(7, 8, 3, p, 1, 0);
  const auto s = score_replication(e, p, d);
  EXPECT_EQ(s.pairs, 6);
  ASSERT_TRUE(s.fid && s.multimodality);
  EXPECT_GE(s.r_precision[2], s.r_precision[0]);
  auto bad = d;
  bad.order = torch::zeros({7}, torch::kLong);
  EXPECT_THROW(score_replication(e, p, bad), vimo::Error);
  p.batch_size = 8;
  EXPECT_THROW(score_replication(e, p, d), vimo::Error);  // no full batch
}

TEST(EvalEmbeddingMetrics, MeanIntervalIsInterGensConfidenceInterval) {
  const auto r = mean_interval({1, 2, 3});
  EXPECT_NEAR(r.mean, 2.0, 1e-12);
  EXPECT_NEAR(r.ci95, 1.96 * std::sqrt(2.0 / 3) / std::sqrt(3.0), 1e-12);
}

// The contrastive loss with `same` pairs against cross-entropy written out per row in float64: a
// pair marked same is dropped from both softmax denominators, nothing else changes, and no mask is
// the plain symmetric InfoNCE.
TEST(EvalEvaluatorLoss, SameCaptionPairsAreNotNegatives) {
  EvaluatorOptions o;
  o.latent_dim = 8, o.ff_size = 16, o.num_layers = 1, o.num_heads = 2, o.text_vocab = 16, o.text_width = 8,
  o.text_ff = 16, o.text_layers = 1, o.text_heads = 2, o.text_context = 6, o.logit_scale_init = 3.0;
  Evaluator ev(o);
  torch::manual_seed(3);
  const int64_t N = 5;
  auto me = torch::randn({N, 4}), te = torch::randn({N, 4});
  auto same = torch::zeros({N, N}, torch::kBool);
  same[0][2] = same[2][0] = true, same[3][4] = same[4][3] = true, same[1][1] = true;  // the diagonal is ignored
  auto expected = [&](const torch::Tensor& mask) {
    auto u = [](const torch::Tensor& x) { return x.to(torch::kFloat64) / x.to(torch::kFloat64).norm(2, 1, true); };
    auto l = ev->latent_scale().square().to(torch::kFloat64).detach() * u(me).matmul(u(te).t());
    double total = 0;
    for (int dir = 0; dir < 2; ++dir) {
      auto L = dir ? l.t() : l;
      for (int64_t i = 0; i < N; ++i) {
        double den = 0;
        for (int64_t j = 0; j < N; ++j)
          if (j == i || !mask[i][j].item<bool>()) den += std::exp(L[i][j].item<double>());
        total += std::log(den) - L[i][i].item<double>();
      }
    }
    return total / (2.0 * N);
  };
  EXPECT_NEAR(ev->contrastive_loss(me, te, same).item<double>(), expected(same), 1e-5);
  EXPECT_NEAR(ev->contrastive_loss(me, te).item<double>(), expected(torch::zeros({N, N}, torch::kBool)), 1e-5);
  EXPECT_GT(std::abs(ev->contrastive_loss(me, te, same).item<double>() - ev->contrastive_loss(me, te).item<double>()), 1e-4);
  EXPECT_THROW(ev->contrastive_loss(me, te, torch::zeros({N, N - 1}, torch::kBool)), vimo::Error);
}

// FID on hand-computed Gaussians, the protocol scale, and the errors for bad features.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/eval/metrics.h"  // the umbrella header must compile on its own

using namespace vimo::eval;

namespace {
torch::Tensor col(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64).view({-1, 1});
}
}  // namespace

TEST(EvalFid, OneDimensionalCaseMatchesTheFormula) {
  // a: mean 1, var 2; b: mean 3, var 8 -> (1-3)^2 + 2 + 8 - 2 sqrt(16) = 6.
  EXPECT_NEAR(fid(col({0, 2}), col({1, 5})), 6.0, 1e-12);
  EXPECT_NEAR(fid(col({0, 2}), col({1, 5}), 6.0), 36 * 6.0, 1e-9);  // features x6 -> FID x36
}

TEST(EvalFid, IdenticalSetsAreAtZeroAndStatisticsMatchNumpyCov) {
  torch::manual_seed(0);
  auto x = torch::randn({50, 8}, torch::kFloat64);
  EXPECT_NEAR(fid(x, x), 0.0, 1e-9);
  const auto g = activation_statistics(x);
  auto xc = x - x.mean(0);
  EXPECT_TRUE(torch::allclose(g.sigma, xc.t().matmul(xc) / 49.0));
  EXPECT_GT(fid(x, x + 1.0), 7.99);  // mean shift of 1 in 8 dimensions
}

TEST(EvalFid, RankDeficientCovariancesStillGiveAFiniteDistance) {
  torch::manual_seed(1);
  auto a = torch::randn({5, 16}, torch::kFloat64), b = torch::randn({6, 16}, torch::kFloat64);
  const double v = fid(a, b);
  EXPECT_TRUE(std::isfinite(v));
  EXPECT_GT(v, 0.0);
}

TEST(EvalFid, NonPsdCovarianceIsAnImaginaryComponentError) {
  Gaussian a{torch::zeros({1}, torch::kFloat64), torch::ones({1, 1}, torch::kFloat64)};
  Gaussian b{torch::zeros({1}, torch::kFloat64), -torch::ones({1, 1}, torch::kFloat64)};
  EXPECT_THROW(frechet_distance(a, b), vimo::Error);
}

TEST(EvalFid, BadFeaturesAreNamedErrors) {
  auto x = torch::randn({10, 4}, torch::kFloat64);
  auto nan = x.clone();
  nan[2][1] = std::nan("");
  EXPECT_THROW(fid(nan, x), vimo::Error);
  EXPECT_THROW(fid(x, torch::randn({10, 3})), vimo::Error);
  EXPECT_THROW(fid(x.slice(0, 0, 1), x), vimo::Error);
  try {
    fid(x, nan);
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
}

// Unit tests of the chunked head loss (lm/loss.h) against libtorch's cross_entropy over the full
// logits: the summed loss, the argmax count and the gradients of hidden states, head rows and tail.
#include <gtest/gtest.h>

#include "vimo/core/error.h"
#include "vimo/lm/loss.h"

using namespace vimo;
using namespace vimo::lm;

namespace {
struct Case {
  torch::Tensor h, w, tail, targets;
};
// h [2, 7, 16], w [30, 16], tail [5, 16] in float64; targets over all 35 rows with 4 ignored.
Case make_case(bool w_grad, bool with_tail) {
  torch::manual_seed(3);
  auto o = torch::TensorOptions().dtype(torch::kFloat64);
  Case c;
  c.h = torch::randn({2, 7, 16}, o).mul_(2).requires_grad_(true);
  c.w = torch::randn({30, 16}, o).requires_grad_(w_grad);
  if (with_tail) c.tail = torch::randn({5, 16}, o).requires_grad_(true);
  const int64_t V = with_tail ? 35 : 30;
  c.targets = torch::randint(0, V, {2, 7}, torch::kLong);
  c.targets.index_put_({0, 0}, V - 1);  // a tail row as a target
  for (auto [b, t] : {std::pair{0, 3}, {1, 0}, {1, 5}, {1, 6}}) c.targets.index_put_({b, t}, kIgnoreIndex);
  return c;
}
// The reference: the whole [B, T, V] logits and cross_entropy(reduction=sum, ignore_index=-100).
std::pair<torch::Tensor, int64_t> reference(const Case& c) {
  auto logits = c.h.matmul(c.w.t());
  if (c.tail.defined()) logits = torch::cat({logits, c.h.matmul(c.tail.t())}, -1);
  auto flat = logits.reshape({-1, logits.size(-1)});
  auto t = c.targets.reshape({-1});
  namespace F = torch::nn::functional;
  auto loss = F::cross_entropy(flat, t, F::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(kIgnoreIndex));
  auto keep = t.ne(kIgnoreIndex);
  const int64_t correct = flat.argmax(-1).eq(t).logical_and(keep).sum().item<int64_t>();
  return {loss, correct};
}
torch::Tensor grad_of(const torch::Tensor& x) { return x.grad().defined() ? x.grad().clone() : torch::Tensor(); }
void zero(const Case& c) {
  for (auto t : {c.h, c.w, c.tail})
    if (t.defined() && t.grad().defined()) t.mutable_grad().reset();
}
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }
}  // namespace

TEST(LmLoss, ChunkedLossAndGradientsEqualCrossEntropyOverFullLogits) {
  for (bool with_tail : {true, false}) {
    for (int64_t chunk : {int64_t{1}, int64_t{4}, int64_t{7}, int64_t{0}}) {  // uneven chunks, one row, default
      SCOPED_TRACE("tail " + std::to_string(with_tail) + " chunk " + std::to_string(chunk));
      auto c = make_case(/*w_grad=*/true, with_tail);
      auto [ref, ref_correct] = reference(c);
      (ref * 0.37).backward();  // a scaled loss, as gradient accumulation applies it
      auto gh = grad_of(c.h), gw = grad_of(c.w), gt = with_tail ? grad_of(c.tail) : torch::Tensor();
      zero(c);
      auto parts = head_loss(c.h, c.w, c.tail, c.targets, chunk);
      EXPECT_EQ(parts.targets, 10);
      EXPECT_EQ(parts.correct.item<int64_t>(), ref_correct);
      EXPECT_EQ(parts.sum.scalar_type(), torch::kFloat64);
      EXPECT_NEAR(parts.sum.item<double>(), ref.item<double>(), 1e-10 * std::abs(ref.item<double>()));
      (parts.sum * 0.37).backward();
      EXPECT_LT(max_diff(c.h.grad(), gh), 1e-12);
      EXPECT_LT(max_diff(c.w.grad(), gw), 1e-12);
      if (with_tail) EXPECT_LT(max_diff(c.tail.grad(), gt), 1e-12);
      // ignored positions get no gradient
      EXPECT_EQ(c.h.grad().index({1, 5}).abs().max().item<double>(), 0.0);
    }
  }
}

TEST(LmLoss, FrozenHeadGetsNoGradientAndNoGradModeBuildsNoGraph) {
  auto c = make_case(/*w_grad=*/false, true);
  auto [ref, ref_correct] = reference(c);
  ref.backward();
  auto gh = grad_of(c.h), gt = grad_of(c.tail);
  zero(c);
  auto parts = head_loss(c.h, c.w, c.tail, c.targets, 3);
  parts.sum.backward();
  EXPECT_FALSE(c.w.grad().defined());
  EXPECT_LT(max_diff(c.h.grad(), gh), 1e-12);
  EXPECT_LT(max_diff(c.tail.grad(), gt), 1e-12);
  torch::NoGradGuard ng;
  auto p2 = head_loss(c.h, c.w, c.tail, c.targets, 3);
  EXPECT_FALSE(p2.sum.requires_grad());
  EXPECT_NEAR(p2.sum.item<double>(), ref.item<double>(), 1e-10 * ref.item<double>());
  EXPECT_EQ(p2.correct.item<int64_t>(), ref_correct);
}

TEST(LmLoss, NoTargetsGivesZeroLossAndZeroGradients) {
  auto c = make_case(true, true);
  auto parts = head_loss(c.h, c.w, c.tail, torch::full({2, 7}, kIgnoreIndex, torch::kLong));
  EXPECT_EQ(parts.targets, 0);
  EXPECT_EQ(parts.sum.item<double>(), 0.0);
  parts.sum.backward();
  ASSERT_TRUE(c.h.grad().defined());
  EXPECT_EQ(c.h.grad().abs().max().item<double>(), 0.0);
}

TEST(LmLoss, BadInputsNameTheProblem) {
  auto c = make_case(true, true);
  auto bad = c.targets.clone();
  bad.index_put_({0, 1}, 35);  // one past the vocabulary
  try {
    head_loss(c.h, c.w, c.tail, bad);
    FAIL() << "no error for a target outside the vocabulary";
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary [0, 35)"), std::string::npos) << e.what();
  }
  try {
    head_loss(c.h, c.w, c.tail, c.targets.narrow(1, 0, 6));
    FAIL() << "no error for mismatched shapes";
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not match"), std::string::npos) << e.what();
  }
}

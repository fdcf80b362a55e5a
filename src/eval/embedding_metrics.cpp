// R-precision, MM-Dist, Diversity and MultiModality on float64 copies of the embeddings.
#include "vimo/eval/embedding_metrics.h"

#include <utility>

#include "vimo/core/error.h"

namespace vimo::eval {
namespace {

std::string shape_of(const torch::Tensor& t) { return t.defined() ? c10::str(t.sizes()) : "undefined"; }

torch::Tensor emb64(const torch::Tensor& t, int64_t dim, const char* name, const char* fn) {
  VIMO_CHECK(t.defined() && t.dim() == dim && t.numel() > 0, std::string(fn) + ": " + name + " must be a non-empty " +
                                                                 (dim == 2 ? "[N, D]" : "[T, K, D]") + " tensor, got " +
                                                                 shape_of(t));
  auto x = t.to(torch::kCPU, torch::kFloat64).contiguous();
  VIMO_CHECK(torch::isfinite(x).all().item<bool>(),
             std::string(fn) + ": " + name + " contains NaN or Inf; check the evaluator's embeddings");
  return x;
}

std::pair<torch::Tensor, torch::Tensor> pairs_checked(const torch::Tensor& text, const torch::Tensor& motion,
                                                      const char* fn) {
  auto t = emb64(text, 2, "text embeddings", fn), m = emb64(motion, 2, "motion embeddings", fn);
  VIMO_CHECK(t.sizes() == m.sizes(), std::string(fn) + ": text " + shape_of(t) + " and motion " + shape_of(m) +
                                         " embeddings must be matched pairs of one shape");
  return {t, m};
}

torch::Tensor index_checked(const torch::Tensor& idx, int64_t bound, const char* name, const char* fn) {
  VIMO_CHECK(idx.defined() && idx.dim() == 1 && idx.numel() > 0,
             std::string(fn) + ": " + name + " must be a non-empty [S] index vector, got " + shape_of(idx));
  auto i = idx.to(torch::kCPU, torch::kLong);
  VIMO_CHECK(i.min().item<int64_t>() >= 0 && i.max().item<int64_t>() < bound,
             std::string(fn) + ": " + name + " holds indices outside [0, " + std::to_string(bound) + ")");
  return i;
}

// Mean norm of the scaled, divided differences between rows `first` and `second` along dim `dim`.
double mean_pair_distance(const torch::Tensor& x, int64_t dim, const torch::Tensor& first, const torch::Tensor& second,
                          double scale, double divide_by, const char* fn) {
  VIMO_CHECK(first.numel() == second.numel(), std::string(fn) + ": first and second index vectors differ in length (" +
                                                  std::to_string(first.numel()) + " vs " +
                                                  std::to_string(second.numel()) + ")");
  VIMO_CHECK(divide_by != 0, std::string(fn) + ": divide_by must not be 0");
  auto diff = (x.index_select(dim, first) * scale - x.index_select(dim, second) * scale) / divide_by;
  return diff.norm(2, -1).mean().item<double>();
}

}  // namespace

torch::Tensor euclidean_distance_matrix(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = emb64(a, 2, "a", "euclidean_distance_matrix"), y = emb64(b, 2, "b", "euclidean_distance_matrix");
  VIMO_CHECK(x.size(1) == y.size(1),
             "euclidean_distance_matrix: a " + shape_of(x) + " and b " + shape_of(y) + " differ in embedding size");
  auto d = -2 * x.matmul(y.t()) + x.pow(2).sum(1, true) + y.pow(2).sum(1).unsqueeze(0);
  return d.clamp_min(0).sqrt();
}

std::vector<int64_t> top_k_hits(const torch::Tensor& text, const torch::Tensor& motion, int top_k) {
  auto [t, m] = pairs_checked(text, motion, "top_k_hits");
  VIMO_CHECK(top_k >= 1, "top_k_hits: top_k must be at least 1");
  auto dist = euclidean_distance_matrix(t, m);  // [N, N]
  const int64_t n = dist.size(0);
  auto own = dist.diagonal().unsqueeze(1);
  auto earlier = torch::ones({n, n}, torch::kBool).tril(-1);           // j < i
  auto rank = (dist < own).sum(1) + ((dist == own) & earlier).sum(1);  // [N] position of the own motion
  std::vector<int64_t> hits(top_k);
  for (int k = 1; k <= top_k; ++k) hits[k - 1] = (rank < k).sum().item<int64_t>();
  return hits;
}

std::vector<double> r_precision(const torch::Tensor& text, const torch::Tensor& motion, int top_k) {
  auto hits = top_k_hits(text, motion, top_k);
  std::vector<double> r(hits.size());
  for (size_t k = 0; k < hits.size(); ++k) r[k] = static_cast<double>(hits[k]) / static_cast<double>(text.size(0));
  return r;
}

double mm_dist(const torch::Tensor& text, const torch::Tensor& motion) {
  auto [t, m] = pairs_checked(text, motion, "mm_dist");
  return euclidean_distance_matrix(t, m).diagonal().mean().item<double>();
}

double diversity(const torch::Tensor& emb, const torch::Tensor& first, const torch::Tensor& second, double scale,
                 double divide_by) {
  auto x = emb64(emb, 2, "embeddings", "diversity");
  return mean_pair_distance(x, 0, index_checked(first, x.size(0), "first", "diversity"),
                            index_checked(second, x.size(0), "second", "diversity"), scale, divide_by, "diversity");
}

double multimodality(const torch::Tensor& emb, const torch::Tensor& first, const torch::Tensor& second, double scale,
                     double divide_by) {
  auto x = emb64(emb, 3, "embeddings", "multimodality");
  return mean_pair_distance(x, 1, index_checked(first, x.size(1), "first", "multimodality"),
                            index_checked(second, x.size(1), "second", "multimodality"), scale, divide_by,
                            "multimodality");
}

}  // namespace vimo::eval

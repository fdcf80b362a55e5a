// Protocol presets, per-replication draws and scores, and the replication summary.
#include "vimo/eval/metric_protocol.h"

#include <cmath>
#include <numeric>
#include <random>

#include "vimo/core/error.h"
#include "vimo/core/rng.h"
#include "vimo/eval/embedding_metrics.h"
#include "vimo/eval/fid.h"

namespace vimo::eval {

torch::Tensor permutation(std::mt19937_64& rng, int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  for (size_t i = v.empty() ? 0 : v.size() - 1; i > 0; --i) std::swap(v[i], v[core::below(rng, i + 1)]);
  return torch::tensor(v, torch::kLong);
}

namespace {

constexpr uint64_t kDrawStream = 0x4556414c44524157ull;  // "EVALDRAW"

torch::Tensor choice(std::mt19937_64& rng, int64_t n, int64_t k) {
  if (n == 0) return torch::empty({0}, torch::kLong);
  VIMO_CHECK(k <= n, "draw_replication: cannot choose " + std::to_string(k) + " of " + std::to_string(n) +
                         " without replacement");
  return permutation(rng, n).slice(0, 0, k);
}

// The first `keep` entries of `order`, checked to be a permutation of 0..n-1.
torch::Tensor kept_rows(const torch::Tensor& order, int64_t n, int64_t keep, const char* name) {
  VIMO_CHECK(
      order.defined() && order.dim() == 1 && order.size(0) == n,
      std::string("score_replication: draws.") + name + " must be a permutation of " + std::to_string(n) + " rows");
  auto o = order.to(torch::kCPU, torch::kLong);
  VIMO_CHECK(torch::equal(std::get<0>(o.sort()), torch::arange(n, torch::kLong)),
             std::string("score_replication: draws.") + name + " is not a permutation of 0.." + std::to_string(n - 1));
  return o.slice(0, 0, keep);
}

}  // namespace

MetricProtocol metric_protocol(const std::string& name) {
  MetricProtocol p;
  p.name = name;
  if (name == "intergen") {  // tools/eval.py: loaders of batch_size * 3 = 288; utils/metrics.py emb_scale 6
    p.batch_size = 288, p.fid_scale = 6, p.diversity_scale = 6, p.diversity_divide = 2;
  } else if (name == "intermask") {  // eval.py, InterHuman: batch 96, emb_scale 6, divide_by 2 (also MM)
    p.batch_size = 96, p.fid_scale = 6, p.diversity_scale = 6, p.diversity_divide = 2, p.mm_scale = 6, p.mm_divide = 2;
  } else if (name == "intermask-interx") {  // eval.py, Inter-X: batch 32, no scaling
    p.batch_size = 32;
  } else {
    throw Error("eval.protocol: unknown protocol '" + name + "'; use intergen, intermask or intermask-interx");
  }
  return p;
}

ReplicationDraws draw_replication(int64_t n, int64_t n_gt, int64_t mm_k, const MetricProtocol& p, int64_t seed,
                                  int64_t replication) {
  VIMO_CHECK(n >= 0 && n_gt >= 0 && mm_k >= 0, "draw_replication: set sizes must not be negative");
  std::mt19937_64 rng(core::derive_seed(seed, kDrawStream, replication));
  ReplicationDraws d;
  d.order = permutation(rng, n);
  d.gt_order = permutation(rng, n_gt);
  const int64_t kept = p.batch_size > 0 ? n / p.batch_size * p.batch_size : n;
  d.div_first = choice(rng, kept, p.diversity_times);
  d.div_second = choice(rng, kept, p.diversity_times);
  d.mm_first = choice(rng, mm_k, p.mm_times);
  d.mm_second = choice(rng, mm_k, p.mm_times);
  return d;
}

ReplicationScores score_replication(const EmbeddingSet& e, const MetricProtocol& p, const ReplicationDraws& d) {
  VIMO_CHECK(e.text.defined() && e.motion.defined() && e.text.dim() == 2 && e.text.sizes() == e.motion.sizes(),
             "score_replication: text and motion embeddings must be matched [N, D] tensors");
  VIMO_CHECK(p.batch_size >= 1, "score_replication: protocol '" + p.name + "' has no batch size");
  const int64_t n = e.text.size(0), B = p.batch_size, batches = n / B;
  VIMO_CHECK(batches >= 1, "score_replication: " + std::to_string(n) + " pairs make no full batch of " +
                               std::to_string(B) + " (protocol " + p.name + "); generate more pairs");
  auto rows = kept_rows(d.order, n, batches * B, "order");
  ReplicationScores s;
  s.pairs = batches * B;
  std::array<int64_t, 3> hits{};
  double dist_sum = 0;
  for (int64_t b = 0; b < batches; ++b) {
    auto idx = rows.slice(0, b * B, (b + 1) * B);
    auto t = e.text.index_select(0, idx), m = e.motion.index_select(0, idx);
    auto h = top_k_hits(t, m, 3);
    for (int k = 0; k < 3; ++k) hits[k] += h[k];
    dist_sum += mm_dist(t, m) * static_cast<double>(B);
  }
  for (int k = 0; k < 3; ++k) s.r_precision[k] = static_cast<double>(hits[k]) / static_cast<double>(s.pairs);
  s.mm_dist = dist_sum / static_cast<double>(s.pairs);
  auto kept = e.motion.index_select(0, rows);
  VIMO_CHECK(s.pairs > p.diversity_times, "score_replication: diversity needs more than " +
                                              std::to_string(p.diversity_times) + " scored pairs, got " +
                                              std::to_string(s.pairs));
  s.diversity = diversity(kept, d.div_first, d.div_second, p.diversity_scale, p.diversity_divide);
  if (e.gt_motion.defined()) {
    const int64_t ng = e.gt_motion.size(0), keep_gt = ng / B * B;
    VIMO_CHECK(keep_gt >= 2, "score_replication: " + std::to_string(ng) +
                                 " ground-truth motions make no full batch of " + std::to_string(B));
    auto gt = e.gt_motion.index_select(0, kept_rows(d.gt_order, ng, keep_gt, "gt_order"));
    s.fid = fid(gt, kept, p.fid_scale, "ground-truth motion embeddings", "generated motion embeddings");
  }
  if (e.mm_motion.defined()) {
    VIMO_CHECK(e.mm_motion.dim() == 3 && e.mm_motion.size(1) > p.mm_times,
               "score_replication: MultiModality embeddings must be [T, K, D] with K > " + std::to_string(p.mm_times));
    s.multimodality = multimodality(e.mm_motion, d.mm_first, d.mm_second, p.mm_scale, p.mm_divide);
  }
  return s;
}

MeanInterval mean_interval(const std::vector<double>& values) {
  VIMO_CHECK(!values.empty(), "mean_interval: no values");
  const double n = static_cast<double>(values.size());
  double mean = std::accumulate(values.begin(), values.end(), 0.0) / n, var = 0;
  for (double v : values) var += (v - mean) * (v - mean);
  return {mean, 1.96 * std::sqrt(var / n) / std::sqrt(n)};
}

}  // namespace vimo::eval

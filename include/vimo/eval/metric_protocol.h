// The metric part of a text-to-motion evaluation on given embeddings: the protocol settings by which
// InterGen's and InterMask's numbers differ, the random draws of one replication (a documented,
// reproducible generator) and the scores of one replication; mean ± 1.96·σ/√R over replications.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace vimo::eval {

// `eval.protocol`. Values and their sources in docs/eval.md.
struct MetricProtocol {
  std::string name;
  int64_t batch_size = 0;      // R-precision and MM-Dist pool: pairs ranked against each other
  double fid_scale = 1;        // embeddings × this before FID statistics (both sets)
  double diversity_scale = 1;  // || (s·a - s·b) / d ||
  double diversity_divide = 1;
  double mm_scale = 1;  // the same for MultiModality
  double mm_divide = 1;
  int64_t diversity_times = 300;
  int64_t mm_times = 10;
};

// "intergen" | "intermask" (InterHuman) | "intermask-interx"; anything else is an error naming them.
MetricProtocol metric_protocol(const std::string& name);

// One replication's random draws. The loaders of both references shuffle and drop the last partial
// batch, so only the first floor(N / batch_size) * batch_size pairs of `order` are scored at all.
struct ReplicationDraws {
  torch::Tensor order;       // [N] int64 permutation of the generated pairs; batch b = order[bB, (b+1)B)
  torch::Tensor gt_order;    // [N_gt] permutation of the ground-truth motions (FID statistics; drop_last)
  torch::Tensor div_first;   // [diversity_times] rows of the kept motion embeddings, without replacement
  torch::Tensor div_second;  // [diversity_times] an independent second draw
  torch::Tensor mm_first;    // [mm_times] of the K generations per MultiModality text
  torch::Tensor mm_second;   // [mm_times]
};

// One std::mt19937_64 seeded with core::derive_seed(seed, "EVALDRAW", replication) makes the draws
// in the order listed above; each is a Fisher-Yates shuffle (i = n-1 .. 1 swaps i with
// core::below(rng, i + 1)) of 0..n-1, and a choice of k without replacement is the first k of one.
// Sizes 0 (no ground truth, no MultiModality set) give empty draws.
// The Fisher-Yates shuffle of 0..n-1 described above ([n] int64), one draw of `rng` per swap.
torch::Tensor permutation(std::mt19937_64& rng, int64_t n);

ReplicationDraws draw_replication(int64_t n, int64_t n_gt, int64_t mm_k, const MetricProtocol& p, int64_t seed,
                                  int64_t replication);

struct EmbeddingSet {
  torch::Tensor text;       // [N, D] text embeddings of the generated pairs
  torch::Tensor motion;     // [N, D] motion embeddings, row i generated from text i
  torch::Tensor gt_motion;  // [N_gt, D] real motions for FID; undefined: no FID
  torch::Tensor mm_motion;  // [T, K, D] K generations per text; undefined: no MultiModality
};

struct ReplicationScores {
  std::array<double, 3> r_precision{};  // top-1, top-2, top-3
  double mm_dist = 0;
  double diversity = 0;
  std::optional<double> fid, multimodality;
  int64_t pairs = 0;  // pairs scored (full batches only)
};

ReplicationScores score_replication(const EmbeddingSet& e, const MetricProtocol& p, const ReplicationDraws& d);

struct MeanInterval {
  double mean = 0, ci95 = 0;  // ci95 = 1.96 · std(values, ddof 0) / sqrt(R), as InterGen's tools/eval.py
};
MeanInterval mean_interval(const std::vector<double>& values);

// The inputs of replication `r` of `replications`: each tensor is either shared by all replications
// ([N, D]; mm_motion [T, K, D]) or holds one slice per replication ([R, N, D]; [R, T, K, D]).
EmbeddingSet replication_slice(const EmbeddingSet& all, int64_t r, int64_t replications);

// Every replication r = 0..R-1 of `all`: draw_replication(..., seed, r), then score_replication.
// `draws`, when given, receives the draws used (to save them, or to check them against a reference).
std::vector<ReplicationScores> score_replications(const EmbeddingSet& all, const MetricProtocol& p,
                                                  int64_t replications, int64_t seed,
                                                  std::vector<ReplicationDraws>* draws = nullptr);

// {"protocol": {...}, "replications": R, "per_replication": [...], "summary": {metric: {mean, ci95}}}.
nlohmann::ordered_json replication_report(const MetricProtocol& p, const std::vector<ReplicationScores>& runs);

}  // namespace vimo::eval

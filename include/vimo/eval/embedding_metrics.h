// Text-motion retrieval and spread metrics on evaluator embeddings, as InterGen's utils/metrics.py
// defines them: R-precision, MM-Dist, Diversity, MultiModality. Pure: random draws are arguments.
// Everything is computed in float64 (InterGen computes in the embeddings' float32).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vimo::eval {

// dist[i][j] = ||a_i - b_j|| computed as sqrt(-2 a·b + |a|^2 + |b|^2) (InterGen's expansion), with
// negative rounding residue clamped to 0 (numpy would give NaN there). a [N1, D], b [N2, D] -> [N1, N2].
torch::Tensor euclidean_distance_matrix(const torch::Tensor& a, const torch::Tensor& b);

// One batch of matched pairs (text_i, motion_i), text and motion [N, D]: hits[k-1] counts the rows
// whose own motion is among the k nearest motions, for k = 1..top_k (cumulative, as calculate_top_k).
// Equal distances rank as a stable argsort would (lower index first); numpy's default sort is unstable.
std::vector<int64_t> top_k_hits(const torch::Tensor& text, const torch::Tensor& motion, int top_k = 3);

// top_k_hits / N for one batch.
std::vector<double> r_precision(const torch::Tensor& text, const torch::Tensor& motion, int top_k = 3);

// Mean of the matched distances (the trace of the distance matrix over N).
double mm_dist(const torch::Tensor& text, const torch::Tensor& motion);

// mean_i || (scale·emb[first_i] - scale·emb[second_i]) / divide_by ||. emb [N, D]; first, second
// [S] int64 rows of emb (InterGen: two draws of 300 without replacement, scale 6, divide_by 2).
double diversity(const torch::Tensor& emb, const torch::Tensor& first, const torch::Tensor& second, double scale = 1.0,
                 double divide_by = 1.0);

// mean over texts t and draws i of || (scale·emb[t, first_i] - scale·emb[t, second_i]) / divide_by ||.
// emb [T, K, D]: K generations for each of T texts; first, second [S] int64 in [0, K), the same for
// every text (InterGen: S = 10, unscaled; InterMask on InterHuman: scale 6, divide_by 2).
double multimodality(const torch::Tensor& emb, const torch::Tensor& first, const torch::Tensor& second,
                     double scale = 1.0, double divide_by = 1.0);

}  // namespace vimo::eval

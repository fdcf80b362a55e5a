// Fréchet distance between Gaussians fitted to two feature sets (FID), in float64, following
// InterGen's utils/metrics.py (numpy mean/cov, sqrtm of sigma1·sigma2, its 1e-6 diagonal fallback).
#pragma once
#include <torch/torch.h>

namespace vimo::eval {

struct Gaussian {
  torch::Tensor mu;     // [D] float64
  torch::Tensor sigma;  // [D, D] float64, unbiased (N - 1) covariance as np.cov(rowvar=False)
};

// Mean and covariance of features [N, D] (N >= 2) after multiplying them by `scale`
// (InterGen's InterHuman protocol uses 6). `what` names the tensor in error messages.
Gaussian activation_statistics(const torch::Tensor& features, double scale = 1.0, const char* what = "features");

// ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2)). tr(sqrtm) is the sum of the principal square
// roots of the eigenvalues of s1 s2 (real part), which is the trace of scipy.linalg.sqrtm's result;
// two symmetric eigensolves give it when both covariances are well conditioned, a general one otherwise.
// If that is not finite, or the eigen solver fails, `eps`·I is added to both covariances first (as
// InterGen); an imaginary part above 1e-3 in a root is an error (InterGen raises ValueError).
double frechet_distance(const Gaussian& a, const Gaussian& b, double eps = 1e-6);

// FID between feature sets a [Na, D] and b [Nb, D] (`what_a`, `what_b` name them in errors). Through
// frechet_distance when both covariances are well conditioned (or there are more than 4 D rows);
// otherwise (rank-deficient as 288 embeddings of 512 numbers, or ill-conditioned) tr(sqrtm(s1 s2))
// is the sum of the singular values of the centred cross product Xa Xbᵀ / sqrt((Na - 1)(Nb - 1)),
// the same number without a D x D general eigensolve.
double fid(const torch::Tensor& a, const torch::Tensor& b, double scale = 1.0, const char* what_a = "a",
           const char* what_b = "b");

}  // namespace vimo::eval

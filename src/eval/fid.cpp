// FID: feature statistics and the Fréchet distance through the eigenvalues of sigma1·sigma2, or
// through the singular values of the samples' cross products when a covariance is rank-deficient.
#include "vimo/eval/fid.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <optional>

#include "vimo/core/error.h"

namespace vimo::eval {
namespace {

constexpr double kMaxImag = 1e-3;  // InterGen: np.allclose(diagonal(covmean).imag, 0, atol=1e-3)

std::string shape_of(const torch::Tensor& t) { return c10::str(t.sizes()); }

struct RootTrace {
  double trace = 0;     // real part of tr(sqrtm(m))
  double max_imag = 0;  // largest |imaginary part| of one eigenvalue's root (conjugate pairs cancel in the sum)
};

// tr(sqrtm(m)) as the sum of principal square roots of m's eigenvalues, or nothing when the eigen
// solver fails or the result is not finite (scipy's sqrtm returning NaN/Inf, in InterGen's terms).
std::optional<RootTrace> trace_sqrtm(const torch::Tensor& m) {
  torch::Tensor ev;
  try {
    ev = torch::linalg_eigvals(m).to(torch::kComplexDouble).contiguous();
  } catch (const c10::Error&) {
    return std::nullopt;
  }
  const auto* p = ev.data_ptr<c10::complex<double>>();
  RootTrace r;
  for (int64_t i = 0; i < ev.numel(); ++i) {
    const auto root = std::sqrt(std::complex<double>(p[i].real(), p[i].imag()));
    r.trace += root.real();
    r.max_imag = std::max(r.max_imag, std::abs(root.imag()));
  }
  if (!std::isfinite(r.trace) || !std::isfinite(r.max_imag)) return std::nullopt;
  return r;
}

// Both covariances positive definite with condition below 1e8: tr(sqrtm(s1 s2)) is then the trace of
// the symmetric s1^1/2 s2 s1^1/2's root, from two symmetric eigensolves (about 10x faster than the
// general one at D = 512 and as close to scipy). Rank-deficient or ill-conditioned ones return
// nothing and take the general eigenvalue path, whose rounding follows scipy's Schur method.
constexpr double kWellConditioned = 1e-8;

std::optional<RootTrace> trace_sqrtm_symmetric(const torch::Tensor& s1, const torch::Tensor& s2) {
  auto [w, u] = torch::linalg_eigh(s1);
  auto w2 = torch::linalg_eigvalsh(s2);
  for (const auto* x : {&w, &w2}) {
    const double lo = x->min().item<double>(), hi = x->max().item<double>();
    if (!(lo > kWellConditioned * hi)) return std::nullopt;
  }
  auto root1 = (u * w.sqrt().unsqueeze(0)).matmul(u.t());
  auto mu = torch::linalg_eigvalsh(root1.matmul(s2).matmul(root1));
  if (mu.min().item<double>() <= 0) return std::nullopt;
  RootTrace r;
  r.trace = mu.sqrt().sum().item<double>();
  if (!std::isfinite(r.trace)) return std::nullopt;
  return r;
}

// features [N, D] (N >= 2, finite) -> float64 on the CPU, times `scale`.
torch::Tensor scaled_features(const torch::Tensor& features, double scale, const char* what) {
  VIMO_CHECK(features.defined() && features.dim() == 2,
             std::string("activation_statistics: ") + what + " must be [N, D], got " +
                 (features.defined() ? shape_of(features) : std::string("an undefined tensor")));
  VIMO_CHECK(features.size(0) >= 2, std::string("activation_statistics: ") + what +
                                        " needs at least 2 rows for a covariance, got " + shape_of(features));
  VIMO_CHECK(features.size(1) >= 1, std::string("activation_statistics: ") + what + " has no feature columns");
  auto x = features.to(torch::kCPU, torch::kFloat64) * scale;
  VIMO_CHECK(torch::isfinite(x).all().item<bool>(), std::string("activation_statistics: ") + what +
                                                        " contains NaN or Inf; check the embeddings that produced it");
  return x;
}

}  // namespace

Gaussian activation_statistics(const torch::Tensor& features, double scale, const char* what) {
  auto x = scaled_features(features, scale, what);
  auto mu = x.mean(0);
  auto xc = x - mu;
  auto sigma = xc.t().matmul(xc) / static_cast<double>(x.size(0) - 1);
  return {mu, sigma};
}

double frechet_distance(const Gaussian& a, const Gaussian& b, double eps) {
  VIMO_CHECK(a.mu.dim() == 1 && a.mu.sizes() == b.mu.sizes(),
             "frechet_distance: means " + shape_of(a.mu) + " and " + shape_of(b.mu) + " must be [D] of one size");
  const int64_t D = a.mu.size(0);
  VIMO_CHECK(a.sigma.sizes() == torch::IntArrayRef({D, D}) && b.sigma.sizes() == a.sigma.sizes(),
             "frechet_distance: covariances " + shape_of(a.sigma) + " and " + shape_of(b.sigma) + " must be [" +
                 std::to_string(D) + ", " + std::to_string(D) + "]");
  auto mu1 = a.mu.to(torch::kFloat64), mu2 = b.mu.to(torch::kFloat64);
  auto s1 = a.sigma.to(torch::kFloat64), s2 = b.sigma.to(torch::kFloat64);
  for (const auto* t : {&mu1, &mu2, &s1, &s2})
    VIMO_CHECK(torch::isfinite(*t).all().item<bool>(), "frechet_distance: a mean or covariance contains NaN or Inf");
  auto tr = trace_sqrtm_symmetric(s1, s2);
  if (!tr) tr = trace_sqrtm(s1.matmul(s2));
  if (!tr) {
    auto off = torch::eye(D, torch::kFloat64) * eps;
    tr = trace_sqrtm((s1 + off).matmul(s2 + off));
    VIMO_CHECK(tr.has_value(), "frechet_distance: no matrix square root of sigma1·sigma2, even with " +
                                   std::to_string(eps) + "·I added; check the covariances");
  }
  VIMO_CHECK(tr->max_imag <= kMaxImag, "frechet_distance: sqrtm(sigma1·sigma2) has an imaginary component " +
                                           std::to_string(tr->max_imag) +
                                           " (> 1e-3); the covariances are not positive semi-definite");
  auto diff = mu1 - mu2;
  return diff.dot(diff).item<double>() + s1.trace().item<double>() + s2.trace().item<double>() - 2 * tr->trace;
}

double fid(const torch::Tensor& a, const torch::Tensor& b, double scale, const char* what_a, const char* what_b) {
  VIMO_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1),
             "fid: feature sets must be [Na, D] and [Nb, D] with one D, got " + shape_of(a) + " and " + shape_of(b));
  const int64_t D = a.size(1), rows = std::min(a.size(0), b.size(0));
  // Many rows: the Gaussian path (its symmetric eigensolves, else the general one).
  if (rows > 4 * D) return frechet_distance(activation_statistics(a, scale, what_a), activation_statistics(b, scale, what_b));
  auto xa = scaled_features(a, scale, what_a), xb = scaled_features(b, scale, what_b);
  auto mu_a = xa.mean(0), mu_b = xb.mean(0);
  auto ca = xa - mu_a, cb = xb - mu_b;
  const double na = static_cast<double>(a.size(0) - 1), nb = static_cast<double>(b.size(0) - 1);
  auto diff = mu_a - mu_b;
  const double mean_term = diff.dot(diff).item<double>();
  if (rows - 1 >= D) {  // well-conditioned covariances: the symmetric root trace, computed once
    auto sa = ca.t().matmul(ca) / na, sb = cb.t().matmul(cb) / nb;
    if (auto tr = trace_sqrtm_symmetric(sa, sb))
      return mean_term + sa.trace().item<double>() + sb.trace().item<double>() - 2 * tr->trace;
  }
  // A covariance of rank below D, or ill-conditioned with at most 4 D rows (576 reaction embeddings
  // of 512 numbers): the nonzero eigenvalues of s1 s2 = Xaᵀ Xa Xbᵀ Xb / (na nb) are those of
  // (Xa Xbᵀ)(Xa Xbᵀ)ᵀ / (na nb), so tr(sqrtm(s1 s2)) is the sum of the singular values of the
  // [Na, Nb] matrix Xa Xbᵀ over sqrt(na nb) (X centred, n = N - 1): exact, real, and far cheaper
  // than the general eigensolve of s1 s2 at D = 512.
  const double root = torch::linalg_svdvals(ca.matmul(cb.t())).sum().item<double>() / std::sqrt(na * nb);
  VIMO_CHECK(std::isfinite(root), "fid: the singular values of the feature cross products are not finite");
  return mean_term + ca.square().sum().item<double>() / na + cb.square().sum().item<double>() / nb - 2 * root;
}

}  // namespace vimo::eval

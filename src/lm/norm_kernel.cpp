// RMSNorm forward/backward row loops (norm_kernel.h). Compiled with OpenMP and without LibTorch
// headers (see CMakeLists.txt): the threads are the intra-op OpenMP pool that LibTorch sizes.
#include "norm_kernel.h"

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace vimo::lm::kernel {
namespace {

// Σ a·b·c over n with eight partial sums, so the loop vectorizes (c may be null: Σ a·b).
inline float dot3(const float* a, const float* b, const float* c, int64_t n) {
  float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) part[k] += a[j + k] * b[j + k] * (c ? c[j + k] : 1.0f);
  float s = 0;
  for (int k = 0; k < 8; ++k) s += part[k];
  for (; j < n; ++j) s += a[j] * b[j] * (c ? c[j] : 1.0f);
  return s;
}

int threads_for(int64_t N, int64_t H, int threads) {
  // about 16k elements per thread at least: below that the fork costs more than the rows
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, N * H / 16384)));
}
}  // namespace

void rms_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t H, double eps, int threads) {
  const int nt = threads_for(N, H, threads);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const float* xi = x + i * H;
    float* yi = y + i * H;
    const float r = 1.0f / std::sqrt(dot3(xi, xi, nullptr, H) / static_cast<float>(H) + static_cast<float>(eps));
    if (rstd) rstd[i] = r;
    for (int64_t j = 0; j < H; ++j) yi[j] = w[j] * (xi[j] * r);
  }
}

void rms_backward(const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dw, int64_t N,
                  int64_t H, int threads) {
  const int nt = threads_for(N, H, threads);
  std::vector<float> parts(dw ? static_cast<size_t>(nt) * H : 0, 0.0f);  // per-thread Σ g·x·r
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    float* part = dw ? parts.data() + static_cast<size_t>(t) * H : nullptr;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < N; ++i) {
      const float* gi = g + i * H;
      const float* xi = x + i * H;
      float* dxi = dx + i * H;
      const float r = rstd[i];
      const float c = dot3(gi, w, xi, H) * r * r * r / static_cast<float>(H);
      for (int64_t j = 0; j < H; ++j) dxi[j] = r * gi[j] * w[j] - c * xi[j];
      if (part)
        for (int64_t j = 0; j < H; ++j) part[j] += gi[j] * xi[j] * r;
    }
  }
  if (dw) {
    for (int64_t j = 0; j < H; ++j) dw[j] = 0;
    for (int t = 0; t < nt; ++t)
      for (int64_t j = 0; j < H; ++j) dw[j] += parts[static_cast<size_t>(t) * H + j];
  }
}

}  // namespace vimo::lm::kernel

// Raw RMSNorm row kernels behind vimo::lm::rms_norm (no LibTorch types; built with OpenMP).
#pragma once
#include <cstdint>

namespace vimo::lm::kernel {

// Rows of H, row-major and dense. Forward: y = w·x·r, r = 1/sqrt(mean(x²) + eps), rstd[i] = r (rstd
// may be null). Backward: dx = r·g·w - x·r³·mean(g·w·x); dw (may be null) = Σ_rows g·x·r.
void rms_forward(const float* x, const float* w, float* y, float* rstd, int64_t N, int64_t H, double eps, int threads);
void rms_backward(const float* g, const float* x, const float* w, const float* rstd, float* dx, float* dw, int64_t N,
                  int64_t H, int threads);

}  // namespace vimo::lm::kernel

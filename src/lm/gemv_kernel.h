// Raw few-row GEMV kernels behind vimo::lm::small_linear (no LibTorch types; built with OpenMP).
#pragma once
#include <cstdint>

namespace vimo::lm::kernel {

// y[M, N] = x[M, K] · w[N, K]ᵀ with M in 1..4, all row-major and dense; `w_bf16` holds bfloat16 bits.
// `threads` > 1 splits the N output rows into contiguous per-thread ranges (one sequential stream each).
void gemv_f32(const float* x, int64_t M, const float* w, int64_t K, int64_t N, float* y, int threads);
void gemv_bf16(const float* x, int64_t M, const uint16_t* w_bf16, int64_t K, int64_t N, float* y, int threads);

}  // namespace vimo::lm::kernel

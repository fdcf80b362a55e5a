// Few-row GEMV for CPU decoding: each thread streams a contiguous block of weight rows once; AVX2/FMA
// when the CPU has it (chosen at run time), a portable loop otherwise. Compiled with OpenMP and without
// LibTorch headers (see CMakeLists.txt), so the threads are the intra-op OpenMP pool that LibTorch sizes.
#include "gemv_kernel.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define VIMO_GEMV_X86 1
#endif

namespace vimo::lm::kernel {
namespace {

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline float to_float(float v) { return v; }
inline float to_float(uint16_t v) { return bf16_to_float(v); }

// Portable path for rows [n0, n1): eight partial sums per dot product.
template <typename W>
void rows_portable(const float* x, int64_t M, const W* w, int64_t K, int64_t n0, int64_t n1, float* y, int64_t N) {
  for (int64_t n = n0; n < n1; ++n) {
    const W* wr = w + n * K;
    for (int64_t m = 0; m < M; ++m) {
      const float* xr = x + m * K;
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; ++j) part[j] += xr[k + j] * to_float(wr[k + j]);
      float s = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
      for (; k < K; ++k) s += xr[k] * to_float(wr[k]);
      y[m * N + n] = s;
    }
  }
}

#ifdef VIMO_GEMV_X86
__attribute__((target("avx2,fma"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) inline __m256 load8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// One weight row at a time, read front to back; U independent accumulators per x row along k keep the
// FMA pipes busy, and every 8-wide weight load serves all M rows of x.
template <int M, typename W>
__attribute__((target("avx2,fma"))) void rows_avx2(const float* x, const W* w, int64_t K, int64_t n0, int64_t n1,
                                                     float* y, int64_t N) {
  constexpr int U = M == 1 ? 4 : 2;
  for (int64_t n = n0; n < n1; ++n) {
    const W* wr = w + n * K;
    __m256 acc[M][U];
    for (int m = 0; m < M; ++m)
      for (int u = 0; u < U; ++u) acc[m][u] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 * U <= K; k += 8 * U)
      for (int u = 0; u < U; ++u) {
        const __m256 wv = load8(wr + k + 8 * u);
        for (int m = 0; m < M; ++m) acc[m][u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * K + k + 8 * u), wv, acc[m][u]);
      }
    for (; k + 8 <= K; k += 8) {
      const __m256 wv = load8(wr + k);
      for (int m = 0; m < M; ++m) acc[m][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + m * K + k), wv, acc[m][0]);
    }
    for (int m = 0; m < M; ++m) {
      __m256 t = acc[m][0];
      for (int u = 1; u < U; ++u) t = _mm256_add_ps(t, acc[m][u]);
      float s = hsum(t);
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * to_float(wr[kk]);
      y[m * N + n] = s;
    }
  }
}

bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}
#endif

template <typename W>
void rows(const float* x, int64_t M, const W* w, int64_t K, int64_t n0, int64_t n1, float* y, int64_t N) {
#ifdef VIMO_GEMV_X86
  if (cpu_has_avx2_fma()) {
    switch (M) {
      case 1: return rows_avx2<1>(x, w, K, n0, n1, y, N);
      case 2: return rows_avx2<2>(x, w, K, n0, n1, y, N);
      case 3: return rows_avx2<3>(x, w, K, n0, n1, y, N);
      case 4: return rows_avx2<4>(x, w, K, n0, n1, y, N);
      default: break;
    }
  }
#endif
  rows_portable(x, M, w, K, n0, n1, y, N);
}

template <typename W>
void gemv(const float* x, int64_t M, const W* w, int64_t K, int64_t N, float* y, int threads) {
  // At least ~64 KiB of weights per thread, so waking a thread pays for itself.
  const int64_t min_rows = std::max<int64_t>(16, (64 * 1024) / std::max<int64_t>(1, K * int64_t(sizeof(W))));
  const int64_t useful = std::max<int64_t>(1, std::min<int64_t>(threads, (N + min_rows - 1) / min_rows));
#ifdef _OPENMP
  if (useful > 1) {
#pragma omp parallel num_threads(static_cast<int>(useful))
    {
      const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t n0 = N * t / nt, n1 = N * (t + 1) / nt;
      rows(x, M, w, K, n0, n1, y, N);
    }
    return;
  }
#endif
  rows(x, M, w, K, 0, N, y, N);
}

}  // namespace

void gemv_f32(const float* x, int64_t M, const float* w, int64_t K, int64_t N, float* y, int threads) {
  gemv(x, M, w, K, N, y, threads);
}
void gemv_bf16(const float* x, int64_t M, const uint16_t* w, int64_t K, int64_t N, float* y, int threads) {
  gemv(x, M, w, K, N, y, threads);
}

}  // namespace vimo::lm::kernel

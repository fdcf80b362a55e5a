// Few-row linear layers on the CPU (decoding): y = x·Wᵀ (+ b) streamed over W by all intra-op threads.
#pragma once
#include <torch/torch.h>

namespace vimo::lm {

// Rows of x up to which the streaming kernel is used instead of the BLAS GEMM.
constexpr int64_t kSmallLinearMaxRows = 4;

// True when `small_linear` applies: CPU tensors, W [N, K] contiguous float32 or bfloat16, x [.., K] of
// the same dtype with at most kSmallLinearMaxRows rows, and no gradient to record (no grad mode, or
// neither x nor W requires grad). Batch-1..4 decoding is memory-bound on W; MKL's sgemv reaches about
// a third of the bandwidth that a plain threaded stream gets on small CPUs (see docs/lm.md).
bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w);

// x [.., K], w [N, K], bias [N] or undefined -> [.., N] in x's dtype; accumulates in float32.
torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias);

// at::linear, or small_linear where it applies.
torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias = {});

}  // namespace vimo::lm

// Fused CPU kernels of the decoder's element-wise steps: one pass forward and one backward where
// LibTorch's composite ops take several. CPU float32 tensors take the fused path; anything else
// (CUDA, bf16, float64) the composite ops.
#pragma once
#include <torch/torch.h>

namespace vimo::lm {

// x [.., H], weight [H] -> weight * (x * rsqrt(mean(x², -1) + eps)), normalized in float32 and cast back
// before the gain (transformers' LlamaRMSNorm). A fused RoPE was tried and was no faster than
// LibTorch's vectorized mul/roll/add here (lm_bench kernels), so rotary embedding stays composite.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace vimo::lm

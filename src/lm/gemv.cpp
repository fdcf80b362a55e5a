// Few-row linear layers for CPU decoding: operand checks and dispatch to the raw kernels in gemv_kernel.cpp.
#include "vimo/lm/gemv.h"

#include <ATen/Parallel.h>

#include "gemv_kernel.h"
#include "vimo/core/error.h"

namespace vimo::lm {

bool small_linear_applies(const torch::Tensor& x, const torch::Tensor& w) {
  if (!x.device().is_cpu() || !w.device().is_cpu() || w.dim() != 2 || !w.is_contiguous()) return false;
  const auto dt = w.scalar_type();
  if ((dt != torch::kFloat32 && dt != torch::kBFloat16) || x.scalar_type() != dt) return false;
  if (x.dim() < 1 || x.size(-1) != w.size(1) || x.numel() == 0) return false;
  if (x.numel() / w.size(1) > kSmallLinearMaxRows) return false;
  return !torch::GradMode::is_enabled() || !(x.requires_grad() || w.requires_grad());
}

namespace {
// small_linear after small_linear_applies(x, w) held.
torch::Tensor run_small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  const int64_t K = w.size(1), N = w.size(0), M = x.numel() / K;
  auto xf = x.to(torch::kFloat32).contiguous();  // [M, K] (a no-op for float32 contiguous x)
  auto y = torch::empty({M, N}, xf.options());
  const float* xp = xf.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (w.scalar_type() == torch::kFloat32)
    kernel::gemv_f32(xp, M, w.data_ptr<float>(), K, N, yp, threads);
  else
    kernel::gemv_bf16(xp, M, reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), K, N, yp, threads);
  if (bias.defined()) y.add_(bias.to(torch::kFloat32));
  auto sizes = x.sizes().vec();
  sizes.back() = N;
  return y.to(x.scalar_type()).view(sizes);
}
}  // namespace

torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  VIMO_CHECK(small_linear_applies(x, w), "small_linear: unsupported operands (see small_linear_applies)");
  return run_small_linear(x, w, bias);
}

torch::Tensor dense(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  if (small_linear_applies(x, w)) return run_small_linear(x, w, bias);
  return bias.defined() ? at::linear(x, w, bias) : at::linear(x, w);
}

}  // namespace vimo::lm

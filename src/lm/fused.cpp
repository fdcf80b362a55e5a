// Fused CPU RMSNorm with its backward pass (lm/fused.h); the row loops are in norm_kernel.cpp.
#include "vimo/lm/fused.h"

#include <ATen/Parallel.h>

#include "norm_kernel.h"

namespace vimo::lm {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// x [N, H] contiguous float32 -> y = w·x·r; the per-row r [N] into *rstd when given.
torch::Tensor forward_rows(const torch::Tensor& x, const torch::Tensor& w, double eps, torch::Tensor* rstd) {
  const int64_t H = x.size(-1), N = x.numel() / H;
  auto y = torch::empty_like(x);
  if (rstd) *rstd = torch::empty({N}, x.options());
  kernel::rms_forward(x.data_ptr<float>(), w.data_ptr<float>(), y.data_ptr<float>(), rstd ? rstd->data_ptr<float>() : nullptr,
                      N, H, eps, at::get_num_threads());
  return y;
}

struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& w, double eps) {
    auto x = x_in.contiguous();
    torch::Tensor r;
    auto y = forward_rows(x, w, eps, &r);
    ctx->save_for_backward({x, w, r});
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const auto &x = s[0], &w = s[1], &r = s[2];
    auto g = grads[0].contiguous();
    const int64_t H = x.size(-1), N = x.numel() / H;
    auto dx = torch::empty_like(x);
    const bool want_w = ctx->needs_input_grad(1);
    torch::Tensor dw = want_w ? torch::empty({H}, x.options()) : torch::Tensor();
    kernel::rms_backward(g.data_ptr<float>(), x.data_ptr<float>(), w.data_ptr<float>(), r.data_ptr<float>(),
                         dx.data_ptr<float>(), want_w ? dw.data_ptr<float>() : nullptr, N, H, at::get_num_threads());
    return {dx, dw, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // float32 only: a float64 model normalizes in float32 as transformers does (the composite path)
  const bool fused = x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.scalar_type() == x.scalar_type() &&
                     weight.device().is_cpu() && weight.dim() == 1 && x.dim() >= 1 && weight.size(0) == x.size(-1) &&
                     x.size(-1) > 0 && weight.is_contiguous();
  if (!fused) {
    auto y = at::rms_norm(x.to(torch::kFloat32), {x.size(-1)}, std::nullopt, eps);
    return weight * y.to(x.scalar_type());
  }
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) return RmsNormFn::apply(x, weight, eps);
  return forward_rows(x.contiguous(), weight, eps, nullptr);
}

}  // namespace vimo::lm

// Target-token cross-entropy, the head's logits made a chunk of rows at a time (lm/loss.h).
#include "vimo/lm/loss.h"

#include <algorithm>
#include <optional>

#include "vimo/core/error.h"

namespace vimo::lm {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Chunked {
  torch::Tensor sum, correct;          // float (accumulation dtype) scalar, int64 scalar
  torch::Tensor grad_h, grad_w, grad_t;  // d sum / d (h, weight, tail), each only when asked for
};

// h [N, H] (rows with a target), weight [V0, H], tail [V1, H] (V1 may be 0), t [N] in [0, V0 + V1).
// Per chunk of c rows: logits [c, V] -> log-softmax in float32 (float64 for float64 inputs) -> the
// loss and argmax; for gradients, softmax - one-hot [c, V] times the head (dh) and times h (dW).
Chunked run_chunks(const torch::Tensor& h, const torch::Tensor& weight, const torch::Tensor& tail, const torch::Tensor& t,
                   int64_t chunk, bool want_h, bool want_w, bool want_t) {
  const int64_t N = h.size(0), H = h.size(1), V0 = weight.size(0), V1 = tail.size(0), V = V0 + V1;
  const auto dt = h.scalar_type();
  const auto acc = dt == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto w = weight.scalar_type() == dt ? weight : weight.to(dt);
  auto tl = V1 == 0 ? tail : tail.scalar_type() == dt ? tail : tail.to(dt);
  Chunked out;
  out.sum = torch::zeros({}, h.options().dtype(acc));
  out.correct = torch::zeros({}, h.options().dtype(torch::kLong));
  if (want_h) out.grad_h = torch::empty_like(h);
  if (want_w) out.grad_w = torch::zeros({V0, H}, h.options().dtype(acc));
  if (want_t) out.grad_t = torch::zeros({V1, H}, h.options().dtype(acc));
  const bool any_grad = want_h || want_w || want_t;
  for (int64_t r = 0; r < N; r += chunk) {
    const int64_t c = std::min(chunk, N - r);
    auto hc = h.narrow(0, r, c);                    // [c, H]
    auto tc = t.narrow(0, r, c).unsqueeze(1);       // [c, 1]
    auto logits = torch::empty({c, V}, h.options());  // [c, V]: base columns, then the tail's
    auto base_cols = logits.narrow(1, 0, V0);
    at::mm_out(base_cols, hc, w.t());
    if (V1 > 0) {
      auto tail_cols = logits.narrow(1, V0, V1);
      at::mm_out(tail_cols, hc, tl.t());
    }
    auto ls = at::log_softmax(logits.to(acc), 1);  // [c, V]
    out.sum.sub_(ls.gather(1, tc).sum());
    out.correct.add_(ls.argmax(1, true).eq(tc).sum());
    if (!any_grad) continue;
    auto g = ls.exp_();  // softmax
    g.scatter_add_(1, tc, torch::full({c, 1}, -1.0, g.options()));  // minus the one-hot target
    auto gd = g.scalar_type() == dt ? g : g.to(dt);
    if (want_h) {
      auto gh = out.grad_h.narrow(0, r, c);  // [c, H]
      at::mm_out(gh, gd.narrow(1, 0, V0), w);
      if (V1 > 0) gh.addmm_(gd.narrow(1, V0, V1), tl);
    }
    if (want_w || want_t) {
      auto ha = hc.scalar_type() == acc ? hc : hc.to(acc);
      if (want_w) out.grad_w.addmm_(g.narrow(1, 0, V0).t(), ha);   // [V0, c] x [c, H]
      if (want_t) out.grad_t.addmm_(g.narrow(1, V0, V1).t(), ha);  // [V1, c] x [c, H]
    }
  }
  return out;
}

// The loss as one autograd node: its forward computes the gradients along with the loss (they need
// the same softmax), its backward scales them by the incoming gradient of the sum.
struct HeadLoss : torch::autograd::Function<HeadLoss> {
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& h, const torch::Tensor& w, const torch::Tensor& tail,
                               const torch::Tensor& t, int64_t chunk, bool want_h, bool want_w, bool want_t) {
    auto r = run_chunks(h, w, tail, t, chunk, want_h, want_w, want_t);
    if (want_h) ctx->saved_data["h"] = r.grad_h;
    if (want_w) ctx->saved_data["w"] = r.grad_w;
    if (want_t) ctx->saved_data["t"] = r.grad_t;
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(w.scalar_type());
    ctx->saved_data["t_dtype"] = static_cast<int64_t>(tail.scalar_type());
    ctx->mark_non_differentiable({r.correct});
    return {r.sum, r.correct};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto& g = grads[0];  // d loss / d sum (a scalar)
    // The kept gradient times g, in `dt` (the input's dtype; the kept one may be the float32 sum)
    auto scaled = [&](const char* key, std::optional<torch::ScalarType> dt = std::nullopt) -> torch::Tensor {
      if (!ctx->saved_data.count(key) || !g.defined()) return {};
      auto x = ctx->saved_data[key].toTensor();
      return (x * g.to(x.scalar_type())).to(dt.value_or(x.scalar_type()));
    };
    return {scaled("h"),
            scaled("w", static_cast<torch::ScalarType>(ctx->saved_data["w_dtype"].toInt())),
            scaled("t", static_cast<torch::ScalarType>(ctx->saved_data["t_dtype"].toInt())),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

LossParts head_loss(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& tail_in,
                    const torch::Tensor& targets, int64_t chunk) {
  VIMO_CHECK(hidden.dim() == 3 && targets.dim() == 2 && hidden.size(0) == targets.size(0) &&
                 hidden.size(1) == targets.size(1),
             "loss: hidden states " + c10::str(hidden.sizes()) + " and targets " + c10::str(targets.sizes()) +
                 " do not match ([B, T, H] and [B, T])");
  VIMO_CHECK(weight.dim() == 2 && weight.size(1) == hidden.size(2),
             "loss: head weight " + c10::str(weight.sizes()) + " does not match hidden size " + std::to_string(hidden.size(2)));
  const int64_t H = hidden.size(2);
  auto tail = tail_in.defined() ? tail_in : torch::empty({0, H}, weight.options().requires_grad(false));
  VIMO_CHECK(tail.dim() == 2 && tail.size(1) == H, "loss: head tail " + c10::str(tail.sizes()) + " does not match hidden size " + std::to_string(H));
  const int64_t V = weight.size(0) + tail.size(0);
  // The rows with a target and the range check are found where the targets are (on the host for
  // training batches: no read-back from the device); only the chosen rows' ids move to the device.
  auto t = targets.to(torch::kLong).reshape({-1});
  auto flat = hidden.reshape({-1, H});
  auto keep = t.ne(kIgnoreIndex);
  const int64_t n = keep.sum().item<int64_t>();
  LossParts out;
  out.targets = n;
  if (n == 0) {
    out.sum = flat.sum().to(hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32) * 0;  // keeps the graph: a zero gradient, not none
    out.correct = torch::zeros({}, torch::kLong);
    return out;
  }
  torch::Tensor h = flat, tgt = t;
  if (n < t.numel()) {  // only rows with a target are projected
    auto idx = keep.nonzero().squeeze(1);
    h = flat.index_select(0, idx.to(flat.device()));
    tgt = t.index_select(0, idx);
  }
  VIMO_CHECK(tgt.min().item<int64_t>() >= 0 && tgt.max().item<int64_t>() < V,
             "loss: a target id is outside the vocabulary [0, " + std::to_string(V) + ")");
  tgt = tgt.to(hidden.device());
  if (chunk <= 0) chunk = std::max<int64_t>(1, (hidden.is_cuda() ? (int64_t{1} << 26) : (int64_t{1} << 22)) / V);
  const bool grad = torch::GradMode::is_enabled();
  const bool want_h = grad && h.requires_grad(), want_w = grad && weight.requires_grad(),
             want_t = grad && tail.size(0) > 0 && tail.requires_grad();
  if (!want_h && !want_w && !want_t) {
    torch::NoGradGuard ng;
    auto r = run_chunks(h, weight, tail, tgt, chunk, false, false, false);
    out.sum = r.sum;
    out.correct = r.correct;
    return out;
  }
  auto r = HeadLoss::apply(h, weight, tail, tgt, chunk, want_h, want_w, want_t);
  out.sum = r[0];
  out.correct = r[1];
  return out;
}

LossParts causal_lm_loss(LlamaForCausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets) {
  auto& head = model->lm_head ? model->lm_head : model->model->embed_tokens;
  return head_loss(hidden, head->weight, head->tail, targets);
}

torch::Tensor shift_labels(const torch::Tensor& labels) {
  VIMO_CHECK(labels.dim() == 2, "labels must be [B, T]");
  auto out = torch::full_like(labels, kIgnoreIndex);
  if (labels.size(1) > 1) out.narrow(1, 0, labels.size(1) - 1).copy_(labels.narrow(1, 1, labels.size(1) - 1));
  return out;
}

}  // namespace vimo::lm

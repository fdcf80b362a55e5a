// Target-token cross-entropy (lm/loss.h).
#include "vimo/lm/loss.h"

#include "vimo/core/error.h"

namespace vimo::lm {

LossParts causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  VIMO_CHECK(logits.dim() == 3 && targets.dim() == 2 && logits.size(0) == targets.size(0) &&
                 logits.size(1) == targets.size(1),
             "loss: logits " + c10::str(logits.sizes()) + " and targets " + c10::str(targets.sizes()) +
                 " do not match ([B, T, V] and [B, T])");
  const int64_t V = logits.size(2);
  auto t = targets.to(logits.device(), torch::kLong).reshape({-1});
  auto keep = t.ne(kIgnoreIndex);
  auto idx = keep.nonzero().squeeze(1);
  LossParts out;
  out.targets = idx.numel();
  auto flat = logits.reshape({-1, V});
  if (out.targets == 0) {
    out.sum = flat.sum().to(torch::kFloat32) * 0;  // keeps the graph: a zero gradient, not none
    out.correct = torch::zeros({}, torch::kLong);
    return out;
  }
  auto rows = flat.index_select(0, idx).to(torch::kFloat32);  // [N, V]
  auto tgt = t.index_select(0, idx);
  VIMO_CHECK(tgt.min().item<int64_t>() >= 0 && tgt.max().item<int64_t>() < V,
             "loss: a target id is outside the vocabulary [0, " + std::to_string(V) + ")");
  out.sum = torch::nn::functional::cross_entropy(rows, tgt,
                                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.correct = rows.detach().argmax(-1).eq(tgt).sum();
  return out;
}

torch::Tensor shift_labels(const torch::Tensor& labels) {
  VIMO_CHECK(labels.dim() == 2, "labels must be [B, T]");
  auto out = torch::full_like(labels, kIgnoreIndex);
  if (labels.size(1) > 1) out.narrow(1, 0, labels.size(1) - 1).copy_(labels.narrow(1, 1, labels.size(1) - 1));
  return out;
}

}  // namespace vimo::lm

// The language-model loss of every LM stage: cross-entropy on target tokens only, normalized by the
// number of target tokens (so gradient accumulation can normalize over a whole optimizer step).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace vimo::lm {

constexpr int64_t kIgnoreIndex = -100;

struct LossParts {
  torch::Tensor sum;      // scalar: summed cross-entropy over target tokens (float32)
  int64_t targets = 0;    // number of target tokens
  torch::Tensor correct;  // scalar int64: targets whose argmax logit is the target
};

// logits [B, T, V]; targets [B, T] aligned with the logits (targets[b, t] is the token that position t
// predicts, kIgnoreIndex where there is none). The loss of the batch is sum / targets.
LossParts causal_lm_loss(const torch::Tensor& logits, const torch::Tensor& targets);

// transformers' labels (unshifted: position t predicts labels[t + 1]) -> aligned targets [B, T].
torch::Tensor shift_labels(const torch::Tensor& labels);

}  // namespace vimo::lm

// The language-model loss of every LM stage: cross-entropy on target tokens only, normalized by the
// number of target tokens (so gradient accumulation can normalize over a whole optimizer step). The
// head's logits are made a chunk of target rows at a time and never held whole: [N, V] float32 logits
// are 1 GB for 2048 targets at a 128k vocabulary.
#pragma once
#include <torch/torch.h>

#include <cstdint>

#include "vimo/lm/model.h"

namespace vimo::lm {

constexpr int64_t kIgnoreIndex = -100;

struct LossParts {
  torch::Tensor sum;      // scalar: summed cross-entropy over target tokens (float32; float64 for a float64 model)
  int64_t targets = 0;    // number of target tokens
  torch::Tensor correct;  // scalar int64: targets whose argmax logit is the target
};

// hidden [B, T, H] (the model's hidden(): after the final norm); targets [B, T] aligned with it
// (targets[b, t] is the token that position t predicts, kIgnoreIndex where there is none). The head
// is the model's (tied embedding or lm_head, with its vocabulary tail). The loss of the batch is
// sum / targets.
LossParts causal_lm_loss(LlamaForCausalLM& model, const torch::Tensor& hidden, const torch::Tensor& targets);

// The same against explicit head rows: weight [V0, H] and tail [V1, H] (undefined or empty: none)
// make the vocabulary weight ++ tail. Only rows with a target are projected, `chunk` of them at a time
// (0: about 4M logits per chunk on the CPU, 64M on a GPU). When a gradient is wanted, the forward
// computes it per chunk (softmax minus one-hot), so backward only scales it; the gradients equal
// those of cross_entropy over the full logits.
LossParts head_loss(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& tail,
                    const torch::Tensor& targets, int64_t chunk = 0);

// transformers' labels (unshifted: position t predicts labels[t + 1]) -> aligned targets [B, T].
torch::Tensor shift_labels(const torch::Tensor& labels);

}  // namespace vimo::lm

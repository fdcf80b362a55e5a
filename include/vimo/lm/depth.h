// The depth head (docs/depth_head.md): a small causal transformer over the Q residual levels of one
// motion slot, conditioned on the LM's hidden state at the position before the slot. It predicts the
// slot's codes one level at a time (level 0 also the END of the motion block). Tensor names are the
// doc's, under the LM module's child `depth_head`.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "vimo/lm/loss.h"

namespace vimo::lm {

struct DepthHeadOptions {
  int64_t hidden = 0;  // the LM's hidden size H
  int64_t width = 256;  // d
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t ffn = 0;     // F; 0 = 4·d
  int64_t levels = 0;  // Q
  int64_t codes = 0;   // K
  int64_t ffn_size() const { return ffn > 0 ? ffn : 4 * width; }
  // Throws naming `what` when a size is not positive or d is not divisible by the heads.
  void check(const std::string& what) const;
};

struct DepthHeadImpl : torch::nn::Module {
  DepthHeadImpl(DepthHeadOptions o, const torch::TensorOptions& t = {});
  // h [N, H], codes [N, Q] int64 (teacher forcing: the input of level q uses codes[:, q-1]; entries
  // < 0 read as 0) -> x [N, Q, d] after the final norm.
  torch::Tensor states(const torch::Tensor& h, const torch::Tensor& codes);
  // x [N, Q, d] -> code logits [N, Q, K] and the END logit of level 0 [N].
  std::pair<torch::Tensor, torch::Tensor> logits(const torch::Tensor& x);
  // Normal(0, std) weights, unit norm gains (deterministic in `seed`).
  void init_weights(double std, uint64_t seed);
  // The hidden state and the slot's codes so far -> the logits of level q: [N, K + 1] at level 0 (END
  // last), [N, K] above. prefix [N, q] int64.
  torch::Tensor level_logits(const torch::Tensor& h, const torch::Tensor& prefix);
  // Generation of one slot per row: level by level, `pick(q, logits)` chooses codes [N] (int64) from
  // the level's logits [N, K + 1] (level 0, END last) or [N, K]; returns the codes [N, Q] (a row whose
  // level 0 is END keeps going with code 0 as input; its higher codes mean nothing). On the CPU in
  // float32 it runs incrementally in plain loops (one new position per level, keys and values kept);
  // elsewhere through level_logits.
  using Pick = std::function<torch::Tensor(int64_t q, const torch::Tensor& logits)>;
  torch::Tensor sample_slot(const torch::Tensor& h, const Pick& pick);
  const DepthHeadOptions& options() const { return o_; }

  torch::Tensor in_proj, code_embed, pos_embed, norm, heads, end;
  std::vector<torch::Tensor> attn_norm, qkv, out, mlp_norm, gate, up, down;

 private:
  DepthHeadOptions o_;
};
TORCH_MODULE(DepthHead);

// Summed cross-entropy of the depth targets [N, Q] (level 0 in 0..K, K = END; -100 = none; an END
// target's higher levels must be -100), their count and the correct argmaxes, for the hidden
// states h [N, H] of those positions. Rows without any target are dropped before the head runs.
LossParts depth_loss(DepthHead& head, const torch::Tensor& h, const torch::Tensor& targets);

// The loss of docs/depth_head.md on one set of hidden states [B, T, H]: the text targets [B, T] through
// the LM's head and, when `depth_targets` [B, T, Q] is defined, those through the LM's depth head; the
// sums and counts of both together (the loss is sum / targets).
LossParts motion_lm_loss(LlamaForCausalLM& m, const torch::Tensor& hidden, const torch::Tensor& targets,
                         const torch::Tensor& depth_targets);

// A slot's codes [..., Q] (level 0 < 0: no slot) -> the ids of its levels 1..Q-1 [..., Q-1]
// (motion_base + q·K + code), -1 where there is no slot: ForwardOptions::extra_ids.
torch::Tensor slot_extra_ids(const torch::Tensor& codes, int64_t motion_base, int64_t K);

}  // namespace vimo::lm

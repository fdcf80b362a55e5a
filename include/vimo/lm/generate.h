// Autoregressive generation: greedy or sampled (temperature, top-k, top-p), repetition penalty,
// stop tokens, batches of prompts with different lengths, and a logits-processor hook.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "vimo/lm/model.h"

namespace vimo::lm {

// Called on each step's next-token logits [B, V] (float32, after the repetition penalty) with
// each sequence's tokens so far (prompt + generated); may edit logits in place, e.g. set illegal
// ids to -inf to constrain motion blocks to the current slot's codes.
using LogitsProcessor =
    std::function<void(torch::Tensor& logits, const std::vector<std::vector<int64_t>>& tokens, int64_t step)>;

// Called after each step's sampling with the newest positions' hidden states [B, H] (after the final
// norm) and the sampled ids [B] (CPU int64): may replace ids and fill `extra` [B, E] (CPU int64, -1 =
// none) with the extra ids of the next input (ForwardOptions::extra_ids): a depth head's slots.
using SlotHook = std::function<void(const torch::Tensor& hidden, torch::Tensor& next, torch::Tensor& extra, int64_t step)>;

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  bool greedy = false;
  double temperature = 1.0;
  int64_t top_k = 0;                 // 0 = off
  double top_p = 1.0;                // 1 = off
  double repetition_penalty = 1.0;   // 1 = off; transformers' rule (divide positive, multiply negative)
  std::vector<int64_t> stop_tokens;  // a sequence ends after emitting one (it is kept in the output)
  int64_t pad_token = 0;             // fed after a sequence ended and used for left padding
  uint64_t seed = 0;
  bool use_cache = true;             // false recomputes the whole prefix every step (for checks)
  LogitsProcessor processor;
  int64_t extra_width = 0;                // E of the extra ids (0: none)
  std::vector<torch::Tensor> prompt_extra;  // per prompt: [length, E] int64 extra ids, or empty
  SlotHook slot_hook;
  // Classifier-free guidance: per prompt an unconditional prompt (empty = that row unguided; the whole
  // vector empty = none). A guided row's logits are u + guidance·(c − u), u from its unconditional
  // twin, which is fed the same sampled tokens. Applied first (before the repetition penalty and
  // `processor`), as transformers does; flat layouts only (no extra ids or slot hook).
  double guidance = 1.0;
  std::vector<std::vector<int64_t>> uncond_prompts;
};

// Prompts may differ in length (they are left-padded); returns each sequence's new tokens.
std::vector<std::vector<int64_t>> generate(LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& o);

// The individual steps, exposed for reuse and tests. logits [B, V] float32.
void apply_repetition_penalty(torch::Tensor& logits, const std::vector<std::vector<int64_t>>& tokens, double penalty);
// The next ids [B]: argmax, or a draw from sampling_probs (on CPU float32 logits in plain loops).
torch::Tensor sample_next(const torch::Tensor& logits, const GenerateOptions& o, torch::Generator& gen);  // [B]
// The distribution sampled from: softmax of the logits / temperature after top-k and top-p, [B, V].
torch::Tensor sampling_probs(const torch::Tensor& logits, const GenerateOptions& o);

}  // namespace vimo::lm

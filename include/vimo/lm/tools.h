// Task-level helpers behind the `vimo lm` commands: token parsing, padded batch forward,
// loading a model (+ adapter) for inference, and building a model directory from a YAML config.
#pragma once
#include <string>
#include <vector>

#include "vimo/lm/config.h"
#include "vimo/lm/model.h"

namespace vimo::lm {

// "1 2 3" or "1,2,3" -> ids; errors name the bad entry.
std::vector<int64_t> parse_tokens(const std::string& text);

// Runs several sequences as one padded batch ("left" or "right" padding) and returns logits
// [B, Tmax, V] float32 aligned to each sequence's own tokens from index 0; rows past a
// sequence's length are zero.
torch::Tensor forward_padded(LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& seqs,
                             const std::string& padding = "right");

// Loads an HF directory, then an optional PEFT adapter directory (merged when `merge`).
LlamaForCausalLM load_for_inference(const std::string& model_dir, const std::string& adapter_dir,
                                    const std::string& dtype, const std::string& device, bool merge = true);

// Builds the model the config describes: `model.base` loaded (or random weights from the
// architecture keys), the vocabulary resized to `vocab.size`, LoRA attached when enabled.
LlamaForCausalLM build_from_config(const LmConfig& c, torch::Device device);

}  // namespace vimo::lm

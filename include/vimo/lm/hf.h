// Hugging Face Llama checkpoints: config.json + model.safetensors or a sharded
// model.safetensors.index.json, memory-mapped on load and written back in the same layout.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "vimo/lm/model.h"

namespace vimo::lm {

struct LoadOptions {
  std::optional<torch::ScalarType> dtype;  // default: config.json's torch_dtype
  torch::Device device = torch::kCPU;
};

struct SaveOptions {
  std::optional<torch::ScalarType> dtype;  // default: the model's dtype
  // Shard when the weights exceed this many bytes (model-0000i-of-0000n.safetensors + index);
  // 0 = keep the layout the model was loaded from (one file for a model built from scratch).
  int64_t max_shard_bytes = 0;
};

// The checkpoint's layout, remembered so save_pretrained can write the same files.
struct CheckpointLayout {
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file; empty = one file
};

// Loads a directory. Weights whose dtype and device already match are used in place from the
// private memory map (copy-on-write), so peak memory stays near one copy of the checkpoint.
// Missing tensors (all listed), unexpected tensors and shape mismatches are errors.
LlamaForCausalLM load_pretrained(const std::string& dir, const LoadOptions& opt = {}, CheckpointLayout* layout = nullptr);

// Writes config.json (+ generation_config.json if absent) and the weights, atomically per file.
// Vocabulary tails are folded in; LoRA adapters are not saved here (see lora.h).
void save_pretrained(LlamaForCausalLM& m, const std::string& dir, const SaveOptions& opt = {},
                     const CheckpointLayout* layout = nullptr);

// A model with random weights (normal(0, std), norms 1) from a config: the from-scratch path.
LlamaForCausalLM build_random(const LlamaConfig& c, double std, uint64_t seed, torch::Device device = torch::kCPU);

}  // namespace vimo::lm

// LoRA adapters on chosen projections: attach, freeze the base, save/load PEFT-compatible
// adapter directories (adapter_model.safetensors + adapter_config.json), merge and unmerge.
#pragma once
#include <string>
#include <vector>

#include "vimo/lm/model.h"

namespace vimo::lm {

// The LoRA defaults of vimo (the `lora` config section takes its defaults from here).
struct LoraOptions {
  int64_t rank = 8;
  double alpha = 16;
  double dropout = 0.05;
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};  // q k v o gate up down (_proj)
  bool rslora = false;  // scaling alpha/sqrt(r) instead of alpha/r
  uint64_t seed = 0;
};

// Attaches adapters (A uniform, B zero: the model's output is unchanged) and, when freeze is set,
// freezes every base weight except vocabulary tails. Returns the number of adapted projections.
int64_t apply_lora(LlamaForCausalLM& m, const LoraOptions& o, bool freeze = true);

// Writes adapter_model.safetensors with PEFT names (base_model.model.<module>.lora_A.weight) and
// adapter_config.json; rows added by resize_vocab are saved whole as modules_to_save.
void save_adapter(LlamaForCausalLM& m, const std::string& dir, const std::string& base_model = "");

// Reads a PEFT LoRA directory (vimo's or PEFT's), attaches and fills the adapters (unmerged).
LoraOptions load_adapter(LlamaForCausalLM& m, const std::string& dir);

// The options of a `lora` config section; `seed` draws the A matrices.
struct LmLoraSection;
LoraOptions lora_options(const LmLoraSection& s, uint64_t seed);

void merge_lora(LlamaForCausalLM& m);    // fold adapters into the base weights
void unmerge_lora(LlamaForCausalLM& m);  // take them out again

}  // namespace vimo::lm

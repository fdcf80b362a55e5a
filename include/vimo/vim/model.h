// The motion-language model of an LM run (stages 2 and 3): the Llama LM, the unified vocabulary, the
// text tokenizer, the chat template and the stage-1 motion tokenizer, loaded from a run directory's
// lm/ description and checkpoint, with task-level generation under the motion-block constraints.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vimo/core/tensor_io.h"
#include "vimo/data/packing.h"
#include "vimo/lm/config.h"
#include "vimo/lm/depth.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/model.h"
#include "vimo/text/chat.h"
#include "vimo/text/vocab.h"
#include "vimo/tokenizer/tokenizer.h"
#include "vimo/vim/tasks.h"

namespace vimo::vim {

// lm/vim.json: what the LM of a run is made of.
struct ModelSpec {
  std::string stage = "pretrain";
  std::string base = "scratch";  // HF Llama directory the run adapts, or scratch (fully trained)
  int64_t base_vocab = 0;        // rows of the base's vocabulary (new rows follow); 0 for scratch
  std::string tokenizer_run;     // the stage-1 run whose codes the LM reads and writes
  int64_t codebook_size = 0;     // K
  int64_t layers = 0;            // quantizer levels the LM sees (<= the tokenizer's Q)
  int64_t tokenizer_quantizers = 0;
  int64_t downsample = 4;        // motion frames per token step
  std::vector<Task> tasks;       // trained tasks
  double caption_dropout = 0;    // share of t2m prompts trained without their caption (> 0: guidance works)
  std::string motion_head = "flat";  // flat (Q ids per slot) | depth (one position per slot, docs/depth_head.md)
  lm::DepthHeadOptions depth;        // depth: width, layers, heads, ffn (hidden, levels, codes follow the LM)
  bool depth_head() const { return motion_head == "depth"; }
  std::optional<lm::LoraOptions> lora;
  std::string text_file;         // the text tokenizer's file name inside lm/
  nlohmann::json to_json() const;
  static ModelSpec from_json(const nlohmann::json& j, const std::string& context);
};

struct GenerateSettings {
  int64_t max_new = 256;           // text responses
  int64_t max_motion_steps = 75;   // token steps per motion block (x downsample frames)
  int64_t min_motion_steps = 0;    // token steps before a motion block may close
  bool greedy = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  double repetition_penalty = 1.0;  // text responses only (transformers' rule); 1 = off
  double guidance = 1.0;            // classifier-free guidance of caption -> motion; 1 = off
  // The `generate` section of a config (max_motion_steps keeps its default).
  static GenerateSettings from(const lm::LmGenerateSection& s);
};

// The `generate` section of an LM run's config.yaml (defaults where the run has none): the defaults of
// every command that generates with the run.
lm::LmGenerateSection run_generate_section(const std::string& run_dir);

struct Request {
  Task task = Task::kT2M;
  std::string caption;   // t2m (and reactions with the caption)
  torch::Tensor codes;   // [T', 2, >=layers] m2t (both) / reactions (the actor's slot filled)
  int tmpl = 0;          // phrasing index
};

struct Result {
  Task task = Task::kT2M;
  std::string text;      // m2t: the caption
  torch::Tensor codes;   // motion responses: [T', P, layers] int64 (P = 2 for t2m, 1 otherwise)
  std::vector<int64_t> ids;  // the generated ids
};

struct DecodeConstraint;  // per-sequence state of constrained decoding (model.cpp)

class VimModel {
 public:
  VimModel(lm::LlamaForCausalLM lm, text::UnifiedVocab vocab, std::shared_ptr<text::TextTokenizer> text,
           ModelSpec spec, Templates templates);
  // Loads <run>/lm/ and the run's checkpoint (best/ if complete, else the latest), unmerged as trained.
  // The motion tokenizer is loaded on first use.
  static VimModel load_run(const std::string& run_dir, torch::Device device);
  // The checkpoint load_run uses; a vimo::Error naming the run when it has none.
  static std::string run_checkpoint(const std::string& run_dir);

  lm::LlamaForCausalLM& lm() { return p_->lm; }
  const text::UnifiedVocab& vocab() const { return p_->vocab; }
  const text::TextTokenizer& text() const { return *p_->text; }
  const text::ChatTemplate& chat() const { return p_->chat; }
  const ModelSpec& spec() const { return p_->spec; }
  const Templates& templates() const { return p_->templates; }
  // The stage-1 tokenizer of spec().tokenizer_run (loaded once, on the LM's device).
  tokenizer::MotionTokenizer& motion_tokenizer();
  void set_motion_tokenizer(std::shared_ptr<tokenizer::MotionTokenizer> t) { p_->motion = std::move(t); }

  // Batched generation; a task the run was not trained on is a vimo::Error naming the trained ones.
  std::vector<Result> generate(const std::vector<Request>& requests, const GenerateSettings& s);
  // The assistant's next turn after each conversation (each ending with a user turn): text, and a
  // motion block wherever the model opens one (<motion>, <motion_a>, <motion_b>), decoded under the
  // same slot constraints as generate(); s.max_new bounds the text, s.max_motion_steps each block.
  std::vector<text::Turn> respond(const std::vector<text::Conversation>& conversations, const GenerateSettings& s);
  // features [T, P, 262] (or [T, 262]) -> codes [T', P, layers]; codes [T', P, L] -> features [4T', P, 262].
  torch::Tensor encode_motion(const torch::Tensor& features);
  torch::Tensor decode_motion(const torch::Tensor& codes);
  void check_task(Task t) const;
  // Rendered (flat) ids -> the LM's input: the same ids (flat) or the depth layout's ids and extra ids
  // [n, Q-1] (depth; undefined for flat).
  std::pair<std::vector<int64_t>, torch::Tensor> lm_input(const std::vector<int>& flat) const;
  // The LM's hidden states [B, T, H] on a batch (packed rows, depth slots' extra ids) and its loss parts.
  torch::Tensor hidden(const data::LmBatch& b);
  lm::LossParts loss(const torch::Tensor& hidden, const data::LmBatch& b);

 private:
  void check_guidance() const;
  std::vector<std::vector<int64_t>> decode_constrained(const std::vector<std::vector<int64_t>>& prompts,
                                                       const std::vector<std::vector<int64_t>>& uncond_prompts,
                                                       const std::vector<torch::Tensor>& prompt_extra,
                                                       std::vector<DecodeConstraint>& cons, int64_t max_new,
                                                       const GenerateSettings& s);
  struct Parts {
    Parts(lm::LlamaForCausalLM m, text::UnifiedVocab v, std::shared_ptr<text::TextTokenizer> t, ModelSpec s, Templates tp)
        : lm(std::move(m)), vocab(std::move(v)), text(std::move(t)), chat(vocab, *text), spec(std::move(s)),
          templates(std::move(tp)) {}
    lm::LlamaForCausalLM lm;
    text::UnifiedVocab vocab;
    std::shared_ptr<text::TextTokenizer> text;
    text::ChatTemplate chat;
    ModelSpec spec;
    Templates templates;
    std::shared_ptr<tokenizer::MotionTokenizer> motion;
  };
  std::shared_ptr<Parts> p_;  // shared, so copies of a VimModel are cheap handles on one model
};

// The tensors an LM run's checkpoint holds: those that require grad (LoRA, new rows; all for scratch).
core::NamedTensors trainable_tensors(lm::LlamaForCausalLM& m);
// Fills them from `path`; every trainable tensor must be present with its shape.
void load_trainable_tensors(lm::LlamaForCausalLM& m, const std::string& path);
// Builds the LM of `spec` before its weights are loaded: the base (or an uninitialized model of
// `config`), the vocabulary grown to config.vocab_size, LoRA attached with the base frozen, the depth
// head attached (attach_depth_head).
// The depth head's tensors (names depth_head.*, float32) with its sizes in the metadata, beside a
// merged HF directory; and back into `m`'s attached head (every tensor present with its shape).
void save_depth_head(lm::LlamaForCausalLM& m, const std::string& path);
void load_depth_head(lm::LlamaForCausalLM& m, const std::string& path);
// `spec`'s depth head (float32, initialized from `seed`), attached to `m`; nothing for a flat spec.
void attach_depth_head(lm::LlamaForCausalLM& m, const ModelSpec& spec, uint64_t seed);
lm::LlamaForCausalLM build_lm(const ModelSpec& spec, const lm::LlamaConfig& config, torch::Device device,
                              torch::ScalarType dtype, uint64_t seed);

}  // namespace vimo::vim

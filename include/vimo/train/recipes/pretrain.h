// Stage 2: motion-language pre-training of a Llama LM whose vocabulary holds text and motion tokens
// (t2m, m2t, reactions), LoRA on a frozen HF base or full training from scratch; the merged HF
// model and the PEFT adapter exported at the end (`vimo pretrain`, `vimo lm merge`).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/run.h"
#include "vimo/lm/config.h"
#include "vimo/train/distributed.h"
#include "vimo/train/trainer.h"

namespace vimo::train {

struct PretrainDataSection {
  std::string tokens;
  std::string templates;  // empty: the built-in templates
  std::vector<std::string> tasks = {"t2m", "m2t", "a2b", "b2a", "t2m_single", "m2t_single"};
  std::vector<double> task_weights = {1.0, 1.0, 0.5, 0.5, 1.0, 1.0};
  double reaction_caption = 0.5;
  double caption_dropout = 0;
  int64_t max_length = 512;
  int64_t batch_size = 8;
  bool pack = true;
  int64_t bucket_batches = 16;
  int64_t val_per_task = 32;
  int64_t val_generate = 2;
  template <class V> void visit(V& v) {
    using core::opt;
    v.key("tokens", tokens, "token cache directory with {train,val,test}.h5 (made by `vimo tokenizer encode --data`)");
    v.key("templates", templates, "instruction templates: a YAML file of phrasings per task (placeholders {caption}, {motion}, ...); empty: the built-in configs/templates/pretrain.yaml");
    v.key("tasks", tasks, "tasks: t2m m2t a2b b2a t2m_single m2t_single (those without eligible clips are dropped)");
    v.key("task_weights", task_weights, "mixture weight of each task of data.tasks (same order)");
    v.key("reaction_caption", reaction_caption, "probability that a reaction prompt also gives the caption", opt().min(0).max(1));
    v.key("caption_dropout", caption_dropout,
          "probability that a t2m prompt leaves its caption out (the unconditional model of classifier-free guidance, "
          "generate.guidance); 0 = off", opt().min(0).max(1));
    v.key("max_length", max_length, "context in tokens: longer samples are skipped and reported", opt().min(16));
    v.key("batch_size", batch_size, "rows per micro-batch (packed rows of data.max_length, or single samples)", opt().min(1));
    v.key("pack", pack, "pack several samples per row (per-sample positions, block-diagonal causal mask)");
    v.key("bucket_batches", bucket_batches, "without packing: batches per length-sorted pool", opt().min(1));
    v.key("val_per_task", val_per_task, "validation samples per task (loss and next-token accuracy)", opt().min(0));
    v.key("val_generate", val_generate, "samples generated per task at each validation, written to <run>/samples", opt().min(0));
  }
};

struct PretrainModelSection {
  std::string base = "scratch";
  std::string tokenizer;
  int64_t motion_layers = 0;
  std::string text_model = "bpe";
  int64_t text_vocab_size = 1000;
  std::string dtype = "auto";
  bool activation_checkpointing = false;
  std::string motion_head = "flat";
  int64_t depth_width = 256, depth_layers = 2, depth_heads = 4, depth_ffn = 0;
  lm::LlamaArchSection arch;
  template <class V> void visit(V& v) {
    using core::opt;
    v.key("base", base, "HF Llama directory (config.json, safetensors, tokenizer.json or tokenizer.model), or scratch",
          opt().architecture());
    v.key("tokenizer", tokenizer, "stage-1 tokenizer run directory (its codes and motion layout)", opt().architecture());
    v.key("motion_layers", motion_layers, "residual levels per motion step in the LM's sequence; 0 = all Q", opt().min(0).architecture());
    v.key("text_model", text_model, "scratch: SentencePiece model type of the text tokenizer trained on the captions",
          opt().one_of({"bpe", "unigram"}).architecture());
    v.key("text_vocab_size", text_vocab_size, "scratch: text tokenizer vocabulary size", opt().min(16).architecture());
    v.key("dtype", dtype, "base weights: auto (bfloat16 on CUDA, float32 on the CPU) | float32 | bfloat16",
          opt().one_of({"auto", "float32", "bfloat16"}));
    v.key("activation_checkpointing", activation_checkpointing, "recompute each decoder layer in the backward pass (less memory)");
    v.key("motion_head", motion_head, "flat: Q motion ids per (step, person) slot in the LM's sequence (the paper); depth: one "
          "position per slot and a depth transformer predicting its Q codes (docs/depth_head.md)",
          opt().one_of({"flat", "depth"}).architecture());
    v.key("depth_width", depth_width, "depth head: width", opt().min(1).architecture());
    v.key("depth_layers", depth_layers, "depth head: transformer layers", opt().min(0).architecture());
    v.key("depth_heads", depth_heads, "depth head: attention heads (divide depth_width)", opt().min(1).architecture());
    v.key("depth_ffn", depth_ffn, "depth head: SwiGLU feed-forward size; 0 = 4 x depth_width", opt().min(0).architecture());
    arch.visit(v);
  }
  bool scratch() const { return base == "scratch" || base.empty(); }
};

// The trainer's optimizer keys plus the learning rate of the new vocabulary rows.
struct PretrainOptimSection {
  OptimSection o;
  double new_rows_lr = 0;
  template <class V> void visit(V& v) {
    o.visit(v);
    v.key("new_rows_lr", new_rows_lr, "learning rate of the new vocabulary rows (no weight decay); 0 = optim.lr",
          core::opt().min(0));
  }
};

struct PretrainConfig {
  core::RunSection run;
  PretrainDataSection data;
  PretrainModelSection model;
  lm::LmLoraSection lora;
  TrainSection train;
  PretrainOptimSection optim;
  DistSection dist;
  lm::LmGenerateSection generate;
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("data", data);
    v.section("model", model);
    v.section("lora", lora);
    v.section("train", train);
    v.section("optim", optim);
    v.section("dist", dist);
    v.section("generate", generate);
  }
};

// `vimo pretrain`: trains (or resumes) the run, then exports merged/ (and adapter/ with LoRA).
int train_pretrain(const PretrainConfig& cfg, const std::string& resolved_yaml);

// `vimo lm merge`: <run>/merged (or `out`) as a full HF directory, and <run>/adapter for LoRA runs.
void export_run(const std::string& run_dir, const std::string& merged_dir = "", int64_t max_shard_bytes = 0);

}  // namespace vimo::train

// Stage 3: multi-turn instruction tuning of a stage-2 LM on conversations (docs/conversations.md),
// loss on assistant turns only, the oldest exchanges dropped (and counted) when a conversation is
// longer than the context, stage-2 samples mixed in against forgetting (`vimo instruct`).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/run.h"
#include "vimo/data/conversations.h"
#include "vimo/data/token_cache.h"
#include "vimo/lm/config.h"
#include "vimo/train/recipes/pretrain.h"
#include "vimo/train/distributed.h"
#include "vimo/train/trainer.h"
#include "vimo/vim/batches.h"
#include "vimo/vim/dialogue.h"
#include "vimo/vim/model.h"

namespace vimo::train {

struct InstructDataSection {
  std::string conversations;
  std::string tokens;
  std::string pretrain_tokens;
  double pretrain_ratio = 0.2;
  std::vector<std::string> pretrain_tasks = {"t2m", "m2t"};
  std::string system;
  int64_t max_length = 512;
  int64_t batch_size = 8;
  bool pack = true;
  int64_t val_conversations = 48;
  template <class V> void visit(V& v) {
    using core::opt;
    v.key("conversations", conversations, "directory of {train,val}.jsonl conversations (`vimo data conversations`)");
    v.key("tokens", tokens, "token cache directory ({train,val}.h5) holding every clip the conversations name");
    v.key("pretrain_tokens", pretrain_tokens, "token cache of stage-2 data mixed in against forgetting; empty: none");
    v.key("pretrain_ratio", pretrain_ratio, "share of samples that are stage-2 single-turn samples (needs data.pretrain_tokens)",
          opt().min(0).max(1));
    v.key("pretrain_tasks", pretrain_tasks, "stage-2 tasks of the mix (equal weights)");
    v.key("system", system, "system prompt put before every conversation; empty: none");
    v.key("max_length", max_length, "context in tokens: the oldest exchanges of a longer conversation are dropped",
          opt().min(16));
    v.key("batch_size", batch_size, "rows per micro-batch", opt().min(1));
    v.key("pack", pack, "pack several conversations per row (block-diagonal causal mask)");
    v.key("val_conversations", val_conversations, "validation conversations (loss and accuracy per task)", opt().min(0));
  }
};

struct InstructModelSection {
  std::string init;
  bool activation_checkpointing = false;
  template <class V> void visit(V& v) {
    v.key("init", init, "the stage-2 run to start from (its weights, vocabulary and motion layout)", core::opt().architecture());
    v.key("activation_checkpointing", activation_checkpointing, "recompute each decoder layer in the backward pass");
  }
};

struct InstructConfig {
  core::RunSection run;
  InstructDataSection data;
  InstructModelSection model;
  lm::LmLoraSection lora;
  TrainSection train;
  OptimSection optim;
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

// The stage-3 sample stream: sample n is a stage-2 sample with probability data.pretrain_ratio, else a
// conversation drawn uniformly (n's own seed), rendered and fitted to the context.
class InstructSamples {
 public:
  InstructSamples(vim::VimModel& model, std::vector<data::ConversationRecord> conversations,
                  std::shared_ptr<data::TokenCache> tokens, std::shared_ptr<data::TokenCache> pretrain,
                  std::vector<vim::Task> pretrain_tasks, double pretrain_ratio, std::string system, int64_t max_length,
                  int64_t seed);
  vim::SourceItem operator()(int64_t n);
  // Conversation i rendered and fitted (nullopt: even its last exchange is too long).
  std::optional<vim::FittedDialogue> conversation(size_t i) const;
  // Turns left out to fit the context, over the samples drawn so far (kept in the data state).
  int64_t dropped_turns() const { return dropped_; }
  int64_t counted_until() const { return counted_until_; }
  void set_dropped_turns(int64_t dropped, int64_t counted_until) { dropped_ = dropped, counted_until_ = counted_until; }
  size_t size() const { return convs_.size(); }

 private:
  vim::VimModel& model_;
  std::vector<data::ConversationRecord> convs_;
  std::shared_ptr<data::TokenCache> tokens_, pretrain_;
  std::unique_ptr<vim::SampleStream> stage2_;
  double ratio_;
  std::string system_;
  int64_t max_length_, seed_;
  int64_t dropped_ = 0, counted_until_ = 0;
};

// `vimo instruct`: trains (or resumes) the run from model.init, then exports merged/ (and adapter/).
int train_instruct(const InstructConfig& cfg, const std::string& resolved_yaml);

}  // namespace vimo::train

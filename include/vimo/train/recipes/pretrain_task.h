// The stage-2 training task on train::Trainer: packed/bucketed batches of the task mixture, the
// target-token loss, per-task validation and generated samples (exposed for tests and benches).
#pragma once
#include <functional>
#include <memory>

#include "vimo/data/token_cache.h"
#include "vimo/train/recipes/pretrain.h"
#include "vimo/vim/batches.h"
#include "vimo/vim/model.h"

namespace vimo::train {

class PretrainTask : public Task {
 public:
  // `model` is the LM being trained (with its vocabulary, templates and motion tokenizer); `val` may be null.
  PretrainTask(const PretrainConfig& c, vim::VimModel model, std::shared_ptr<data::TokenCache> train,
               std::shared_ptr<data::TokenCache> val);
  torch::nn::Module& module() override { return *model_.lm(); }
  std::vector<ParamGroup> param_groups() override;
  StepOutput forward(int64_t step) override;
  void after_step(int64_t step) override { step_ = step + 1; }
  std::map<std::string, double> validate() override;
  bool validates_on_every_rank() const override { return true; }  // score_sequences sums over ranks
  core::NamedTensors weights() override;
  void load_weights(const std::string& path) override;
  std::map<std::string, std::string> weights_metadata() override;
  nlohmann::json data_state() const override { return batches_->state(); }
  void load_data_state(const nlohmann::json& s) override { batches_->load_state(s); }
  vim::VimModel& model() { return model_; }
  vim::BatchStream& batches() { return *batches_; }

 private:
  void write_samples();
  PretrainConfig c_;
  vim::VimModel model_;
  std::shared_ptr<data::TokenCache> train_, val_;
  std::unique_ptr<vim::SampleStream> stream_, val_stream_;
  std::unique_ptr<vim::BatchStream> batches_;
  std::vector<data::TokenSeq> val_seqs_;
  int64_t step_ = 0;
};

// The loss (sum over target tokens), accuracy, token count and fill of one LM batch: the training
// step of stages 2 and 3.
StepOutput lm_step(vim::VimModel& model, const data::LmBatch& batch);

// The task mixture of a config.
vim::TaskMix task_mix(const PretrainConfig& c);

// Fixed evaluation sequences: per task up to `per_task` clips spread over the task's eligible clips of
// `cache` (phrasings and captions cycled; those longer than `max_length` left out).
std::vector<data::TokenSeq> eval_sequences(vim::VimModel& m, const data::TokenCache& cache, const vim::TaskMix& mix,
                                           int64_t per_task, int64_t max_length, int64_t seed);
// Loss and next-token accuracy on the response tokens, per task (loss_<task>, accuracy_<task>) and
// over all (loss, accuracy); `rows` sequences per forward.
std::map<std::string, double> score_sequences(vim::VimModel& m, const std::vector<data::TokenSeq>& seqs, int64_t rows);

}  // namespace vimo::train

namespace vimo::train {

// `vimo lm score`: a trained run on a token-cache split.
// The generation request for item `i` of a task's clips: m2t and reactions get the clip's codes;
// t2m gets caption i (cycled), reactions get it on odd i; phrasing i.
vim::Request clip_request(vim::Task t, const data::TokenClip& clip, int64_t i);
// Requests 0..n-1 made by `make`, generated `rows` at a time; `done(i, result)` takes each result.
void generate_batched(vim::VimModel& model, int64_t n, int64_t rows, const vim::GenerateSettings& s,
                      const std::function<vim::Request(int64_t)>& make,
                      const std::function<void(int64_t, const vim::Result&)>& done, const std::string& label);

struct ScoreOptions {
  std::string split;            // token cache .h5 of the split
  std::string out;              // directory for score.json and the generated captions/motions
  int64_t per_task = 1 << 30;   // scored samples per task (default: every eligible clip)
  int64_t generate = 0;         // clips per generating task (m2t captions, t2m motions) to generate
  int64_t rows = 8;             // sequences per forward
  vim::GenerateSettings sampling;
};
// Writes <out>/score.json ({"split", "tasks": {loss_*, accuracy_*}, "t2m": {"generated", "valid"}}),
// <out>/m2t_refs.json and <out>/m2t_hyps.json (the input of `vimo eval captions`) and returns score.json.
nlohmann::json score_run(vim::VimModel& model, const ScoreOptions& o);

}  // namespace vimo::train

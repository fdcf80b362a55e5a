// Generic trainer shared by every stage: AdamW, warmup + cosine/step schedule, clipping, gradient
// accumulation, bf16 autocast, validation with best/, exact checkpoint/resume, metrics, progress.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/tensor_io.h"
#include "vimo/train/distributed.h"

namespace vimo::train {

class GradientSync;

// `optim` config section: AdamW and the learning-rate schedule.
struct OptimSection {
  double lr = 2e-4;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double eps = 1e-8;
  int64_t warmup_steps = 100;
  std::string schedule = "cosine";
  double min_lr_ratio = 0.1;
  std::vector<int64_t> decay_at = {};
  double gamma = 0.1;
  double grad_clip = 1.0;
  template <class V> void visit(V& v) {
    v.key("lr", lr, "peak learning rate (after warmup)", core::opt().min(0));
    v.key("weight_decay", weight_decay, "AdamW decoupled weight decay", core::opt().min(0));
    v.key("beta1", beta1, "AdamW beta1", core::opt().min(0).max(1));
    v.key("beta2", beta2, "AdamW beta2", core::opt().min(0).max(1));
    v.key("eps", eps, "AdamW epsilon", core::opt().min(0));
    v.key("warmup_steps", warmup_steps, "linear warmup from 0 to lr over this many steps", core::opt().min(0));
    v.key("schedule", schedule, "after warmup: cosine (to lr*min_lr_ratio) | step (x gamma at decay_at) | constant",
          core::opt().one_of({"cosine", "step", "constant"}));
    v.key("min_lr_ratio", min_lr_ratio, "cosine: final lr as a fraction of lr", core::opt().min(0).max(1));
    v.key("decay_at", decay_at, "step: steps at which lr is multiplied by gamma");
    v.key("gamma", gamma, "step: decay factor", core::opt().min(0).max(1));
    v.key("grad_clip", grad_clip, "clip the global gradient norm to this; 0 disables", core::opt().min(0));
  }
};

// `train` config section: loop length, accumulation, precision, cadence of logs/validation/checkpoints.
struct TrainSection {
  int64_t steps = 1000;
  int grad_accum = 1;
  std::string precision = "auto";
  int64_t log_every = 50;
  int64_t val_every = 500;
  int64_t ckpt_every = 500;
  std::string best_metric = "loss";
  std::string best_mode = "min";
  template <class V> void visit(V& v) {
    v.key("steps", steps, "optimizer steps in total", core::opt().min(1));
    v.key("grad_accum", grad_accum, "micro-batches accumulated per optimizer step", core::opt().min(1).max(4096));
    v.key("precision", precision, "fp32 | bf16 (autocast, CUDA only) | auto (bf16 on CUDA, else fp32)",
          core::opt().one_of({"fp32", "bf16", "auto"}));
    v.key("log_every", log_every, "steps between progress lines and train metrics", core::opt().min(1));
    v.key("val_every", val_every, "steps between validations (also at the end); 0 disables", core::opt().min(0));
    v.key("ckpt_every", ckpt_every, "steps between checkpoints (also at the end and on a stop signal)",
          core::opt().min(1));
    v.key("best_metric", best_metric, "validation metric that selects <run_dir>/best");
    v.key("best_mode", best_mode, "min | max: whether lower or higher best_metric is better",
          core::opt().one_of({"min", "max"}));
  }
};

// Learning rate at optimizer step `step` (0-based) of `total`.
double learning_rate(const OptimSection& o, int64_t step, int64_t total);

// What one forward pass on one micro-batch gives back; the trainer runs backward on `loss`.
// With `items` > 0 the loss is a SUM over that many items (e.g. target tokens): the step's gradient is
// then divided by the items of all its micro-batches together, so accumulation weighs every item
// equally however they fall into micro-batches. With `items` == 0 the loss is a mean and the
// micro-batches of a step are averaged.
struct StepOutput {
  torch::Tensor loss;                    // scalar
  std::map<std::string, torch::Tensor> logs;  // extra scalars (any device) averaged over the logging
                                              // interval; read back to the host only at log steps
  int64_t samples = 0;                   // for throughput
  int64_t items = 0;
};

// A group of parameters with its own learning rate (a multiple of the schedule's) and weight decay.
struct ParamGroup {
  std::string name;
  std::vector<torch::Tensor> params;
  double lr_scale = 1.0;
  std::optional<double> weight_decay;  // default: optim.weight_decay
};

// A stage recipe implements this; the trainer owns the loop, optimizer, precision and checkpoints.
class Task {
 public:
  virtual ~Task() = default;
  virtual torch::nn::Module& module() = 0;
  // Parameters given to the optimizer (default: every parameter that requires grad).
  virtual std::vector<torch::Tensor> trainable();
  // Their optimizer groups (default: one group of trainable()).
  virtual std::vector<ParamGroup> param_groups();
  // Forward on the next micro-batch of training data (model in train mode, autocast set).
  virtual StepOutput forward(int64_t step) = 0;
  // Called after each optimizer step (e.g. for weight averages).
  virtual void after_step(int64_t /*step*/) {}
  // Validation metrics (model in eval mode, no grad). Empty when there is no validation data.
  virtual std::map<std::string, double> validate() = 0;
  // On a multi-rank run, true: every rank runs validate() on its slice of the validation data and the
  // task sums its statistics over core::process_group() (the same metrics on every rank); false: rank
  // 0 validates alone while the others wait.
  virtual bool validates_on_every_rank() const { return false; }
  // Weights written to model.safetensors (default: every parameter and buffer by module name).
  virtual core::NamedTensors weights();
  virtual void load_weights(const std::string& safetensors_path);
  virtual std::map<std::string, std::string> weights_metadata() { return {}; }
  // Position of the data stream, stored in state.json so a resumed run reads the same batches.
  virtual nlohmann::json data_state() const = 0;
  virtual void load_data_state(const nlohmann::json& s) = 0;
};

struct TrainerOptions {
  std::string run_dir;
  int keep_last = 3;
  bool resume = true;
  torch::Device device = torch::kCPU;
  TrainSection train;
  OptimSection optim;
  DistSection dist;
  std::string tag = "train";  // prefix of the progress line
};

// On a multi-rank run (core::process_group(), or `group`) every rank runs the same loop on its shard of
// each global batch: rank 0's weights are broadcast at the start, gradients (and the step's loss and
// item counts) are summed over ranks after the backward pass, every rank takes the same optimizer
// step; rank 0 alone validates and writes metrics, checkpoints and best/, and a stop signal on any
// rank stops every rank after the same step.
class Trainer {
 public:
  Trainer(TrainerOptions opts, Task& task, std::shared_ptr<ProcessGroup> group = nullptr);
  ~Trainer();
  // Resumes from the run's latest checkpoint (unless resume=false), trains to train.steps.
  // Returns kExitOk, or kExitInterrupted after saving when SIGINT/SIGTERM arrived.
  int fit();
  int64_t step() const { return step_; }
  double best() const { return best_; }

 private:
  void restore(const std::string& ckpt_dir);
  std::string save(const core::NamedTensors& optimizer_state);
  // AdamW's moments and steps by parameter name (optimizer.safetensors). Sharded: every rank takes part
  // (each parameter's state comes from its owner) and rank 0 gets the whole state.
  core::NamedTensors optimizer_tensors();
  void load_optimizer(const std::string& ckpt_dir);
  // Sharded: each parameter from the rank that updated it, to every rank.
  void sync_owned_params();
  void run_validation();
  bool bf16() const;

  TrainerOptions o_;
  Task& task_;
  std::shared_ptr<ProcessGroup> group_;
  std::vector<torch::Tensor> params_;
  std::vector<std::string> names_;  // of params_, for the optimizer state file
  bool sharded_ = false;            // dist.shard_optimizer on a multi-rank run
  std::vector<int> owner_;          // sharded: the rank whose optimizer holds params_[i]
  std::vector<double> lr_scales_;  // per optimizer group
  std::unique_ptr<torch::optim::AdamW> optim_;
  std::unique_ptr<GradientSync> sync_;  // multi-rank: the bucketed gradient sums
  int64_t step_ = 0;
  double best_;
  int64_t best_step_ = -1;
  std::map<std::string, double> last_val_;
};

// Resolves config type C for a run: defaults < files < the run's saved architecture keys (when
// resuming an existing run) < command-line overrides. Returns the config and its YAML text.
template <class C>
C resolve_for_run(const std::vector<std::string>& files, const std::vector<std::string>& overrides,
                  std::string* yaml_out = nullptr);

std::optional<YAML::Node> saved_run_config(const std::string& run_dir);

template <class C>
C resolve_for_run(const std::vector<std::string>& files, const std::vector<std::string>& overrides,
                  std::string* yaml_out) {
  auto src = core::ConfigSource::from_files(files);
  src.apply_overrides(overrides);
  C c = core::resolve_config<C>(src);
  if (c.run.resume) {
    if (auto saved = saved_run_config(c.run.dir)) {
      src = core::ConfigSource::from_files(files);
      src.overlay(*saved, core::architecture_keys<C>(), c.run.dir + "/config.yaml");
      src.apply_overrides(overrides);
      c = core::resolve_config<C>(src);
    }
  }
  if (yaml_out) *yaml_out = core::dump_config(c);
  return c;
}

}  // namespace vimo::train

// The evaluator recipe (config schema "eval", configs/eval/): the InterCLIP-like text-motion evaluator trained
// contrastively on whole clips of a packed dataset with one random caption each, on train::Trainer;
// validation is R-precision within batches of the val split (and a shuffled-caption control).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/core/run.h"
#include "vimo/data/loader.h"
#include "vimo/eval/evaluator.h"
#include "vimo/train/distributed.h"
#include "vimo/train/trainer.h"

namespace vimo::train {

struct EvaluatorDataSection {
  std::string packed;
  data::ClipLoaderOptions loader;  // batch_size, shuffle, drop_last, workers, prefetch; its seed is run.seed
  int64_t val_batch = 96;          // R-precision pool at validation (InterGen: 96)
  int64_t val_clips = 0;
  std::string clip_vocab;          // clip_bpe: CLIP's bpe_simple_vocab_16e6.txt.gz
  double retime = 0.0;             // share of training clips played slower or faster, their captions saying so
  EvaluatorDataSection() {
    loader.batch_size = 64;
    loader.drop_last = true;
    loader.workers = 1;
    loader.prefetch = 4;
  }
  template <class V> void visit(V& v) {
    using core::opt;
    v.key("packed", packed, "packed dataset directory with {train,val,test}.h5 (made by `vimo data prepare`)");
    loader.visit(v);
    v.key("val_batch", val_batch, "pairs ranked against each other in the validation R-precision", opt().min(2));
    v.key("val_clips", val_clips, "validation clips; 0 = the whole val split", opt().min(0));
    v.key("retime", retime,
          "share of training clips played 1.5 times slower or faster (half each; slower only where it fits "
          "model.max_frames), with 'They move slowly.' / 'They move quickly.' after their caption, the words of "
          "the speed edits of `vimo data conversations`; 0 = off",
          opt().min(0.0).max(1.0));
    v.key("clip_vocab", clip_vocab, "model.text_tokenizer=clip_bpe: CLIP's merges file bpe_simple_vocab_16e6.txt.gz");
  }
};

struct EvaluatorConfig {
  core::RunSection run;
  EvaluatorDataSection data;
  eval::EvaluatorOptions model;
  TrainSection train;
  OptimSection optim;
  DistSection dist;
  EvaluatorConfig() {
    run.dir = "runs/eval-demo";
    train.best_metric = "r_precision_top3";
    train.best_mode = "max";
  }
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("data", data);
    v.section("model", model);
    v.section("train", train);
    v.section("optim", optim);
    v.section("dist", dist);
  }
};

// data.retime on one training batch: each clip, with probability `share` (drawn from `seed`), is played
// 1.5 times slower (where that fits max_frames) or faster, half each (motion::retime_features on the
// denormalized frames of its persons), and its caption gets the speed words (data::retimed_caption).
// m [B, T, P, F] normalized is rebuilt (zero past each length); returns the lengths [B].
torch::Tensor retime_batch(const data::ClipBatch& b, const data::Normalizer& norm, double share, int64_t max_frames,
                           uint64_t seed, torch::Tensor& m, std::vector<std::string>& caps);

// R-precision top-1..3 and MM-Dist of matched text/motion embeddings [N, D] in consecutive pools of
// `pool` rows (the last partial pool dropped unless it is the only one), and the same with the text
// rows in a fixed random order (the shuffled-caption control, near k/pool).
std::map<std::string, double> retrieval_scores(const torch::Tensor& text, const torch::Tensor& motion, int64_t pool,
                                               int64_t seed);

// `vimo eval train-evaluator`: the whole recipe. Returns the process exit code.
int train_evaluator(const EvaluatorConfig& cfg, const std::string& resolved_yaml);

}  // namespace vimo::train

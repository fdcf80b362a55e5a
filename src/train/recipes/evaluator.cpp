// Evaluator recipe: whole clips of a packed split with a random caption each, the symmetric
// contrastive loss of eval::Evaluator, validation R-precision on the val split.
#include "vimo/train/recipes/evaluator.h"

#include <filesystem>
#include <random>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/rng.h"
#include "vimo/data/augment.h"
#include "vimo/motion/features.h"
#include "vimo/eval/embedding_metrics.h"
#include "vimo/eval/metric_protocol.h"
#include "vimo/text/sentencepiece.h"
#include "vimo/train/recipes/tokenizer.h"
#include "vimo/train/setup.h"

namespace fs = std::filesystem;

namespace vimo::train {
namespace {

constexpr uint64_t kCaptionStream = 0x43415054494f4eull;  // "CAPTION"
constexpr uint64_t kRetimeStream = 0x524554494d45ull;  // "RETIME"
constexpr uint64_t kShuffleStream = 0x53485546464c45ull;  // "SHUFFLE"

// The first caption of each clip (validation is deterministic); clips without a caption are skipped.
struct CaptionedClips {
  std::vector<torch::Tensor> clips;  // normalized [T, P, F]
  std::vector<std::string> captions;
};

CaptionedClips captioned(const data::PackedDataset& ds, const data::Normalizer& norm, int64_t limit) {
  CaptionedClips out;
  const auto& ix = ds.index();
  for (int64_t i = 0; i < ds.size() && (limit <= 0 || static_cast<int64_t>(out.clips.size()) < limit); ++i) {
    if (ix.captions[i].empty() || ix.captions[i][0].empty()) continue;
    out.clips.push_back(norm.normalize(ds.clip(i).motion));
    out.captions.push_back(ix.captions[i][0]);
  }
  return out;
}

class EvaluatorTask : public Task {
 public:
  EvaluatorTask(EvaluatorConfig c, eval::LoadedEvaluator ev, std::unique_ptr<data::ClipLoader> loader,
                CaptionedClips val, torch::Device dev)
      : c_(std::move(c)), ev_(std::move(ev)), loader_(std::move(loader)), val_(std::move(val)), dev_(dev) {
    if (!val_.captions.empty()) val_ids_ = ev_.tokenize(val_.captions);
  }

  torch::nn::Module& module() override { return *ev_.model; }

  StepOutput forward(int64_t) override {
    auto b = loader_->next();
    const auto& o = ev_.model->options();
    const int64_t B = b.motion.size(0), T = std::min<int64_t>(b.motion.size(1), o.max_frames);
    auto m = b.motion.narrow(1, 0, T);  // [B, T, P, F]
    if (m.size(2) == 1) m = torch::cat({m, torch::zeros_like(m)}, 2);
    // One caption per clip, drawn from (seed, batch position): a resumed run draws the same.
    std::mt19937_64 rng(core::derive_seed(c_.run.seed, kCaptionStream, (b.epoch << 32) + b.cursor));
    std::vector<std::string> caps;
    for (int64_t i = 0; i < B; ++i) {
      const auto& cs = b.captions[i];
      VIMO_CHECK(!cs.empty(), "clip '" + b.ids[i] + "' of '" + c_.data.packed + "' has no caption");
      caps.push_back(cs[core::below(rng, cs.size())]);
    }
    const auto lengths = c_.data.retime > 0 ? retime_batch(b, ev_.normalizer, c_.data.retime, o.max_frames,
                                                           core::derive_seed(c_.run.seed, kRetimeStream, (b.epoch << 32) + b.cursor),
                                                           m, caps)
                                            : b.lengths;
    // Two clips drawn with the same caption text are not negatives of each other (InterCLIP counts
    // them as such; synthetic captions repeat often enough for it to matter).
    auto same = torch::zeros({B, B}, torch::kBool);
    auto sa = same.accessor<bool, 2>();
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < B; ++j) sa[i][j] = caps[i] == caps[j];  // the loss ignores the diagonal
    const int64_t Tm = m.size(1);
    auto me = ev_.model->encode_motion(m.reshape({B, Tm, -1}).to(dev_), lengths.clamp_max(Tm).to(dev_));
    auto te = ev_.model->encode_text(ev_.tokenize(caps).to(dev_), ev_.eot);
    auto loss = ev_.model->contrastive_loss(me, te, same);
    StepOutput s;
    s.loss = loss;
    s.samples = B;
    s.logs = {{"logit_scale", ev_.model->latent_scale().square()}};
    return s;
  }

  std::map<std::string, double> validate() override {
    if (val_.clips.empty()) return {};
    auto me = eval::embed_clips(ev_.model, val_.clips, 96);
    auto te = eval::embed_ids(ev_.model, val_ids_, ev_.eot);
    return retrieval_scores(te, me, c_.data.val_batch, c_.run.seed);
  }

  std::map<std::string, std::string> weights_metadata() override {
    return {{"format", "vimo_evaluator"},
            {"vimo_evaluator", ev_.model->options().to_json().dump()},
            {"features", "normalized"},
            {"data.packed", c_.data.packed}};
  }

  nlohmann::json data_state() const override { return loader_->state(); }
  void load_data_state(const nlohmann::json& s) override { loader_->load_state(s); }

 private:
  EvaluatorConfig c_;
  eval::LoadedEvaluator ev_;
  std::unique_ptr<data::ClipLoader> loader_;
  CaptionedClips val_;
  torch::Tensor val_ids_;
  torch::Device dev_;
};

}  // namespace

torch::Tensor retime_batch(const data::ClipBatch& b, const data::Normalizer& norm, double share, int64_t max_frames,
                           uint64_t seed, torch::Tensor& m, std::vector<std::string>& caps) {
  std::mt19937_64 rng(seed);
  const int64_t B = m.size(0), P = m.size(2);
  VIMO_CHECK(static_cast<int64_t>(caps.size()) == B && b.lengths.size(0) == B, "retime_batch: one caption and length per clip");
  std::vector<torch::Tensor> clips(static_cast<size_t>(B));
  int64_t longest = 0;
  bool any = false;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t L = std::min<int64_t>(b.lengths[i].item<int64_t>(), m.size(1));
    auto x = m[i].narrow(0, 0, L);  // [L, P, F]
    const bool draw = core::uniform01(rng) < share;
    const bool slower = core::uniform01(rng) < 0.5 && L * data::kRetimeFactor <= static_cast<double>(max_frames);
    if (draw && L >= 8) {
      const int64_t persons = b.persons[i].item<int64_t>();
      auto raw = norm.denormalize(x.narrow(1, 0, persons));
      auto y = norm.normalize(motion::retime_features(raw, slower ? data::kRetimeFactor : 1.0 / data::kRetimeFactor));
      y = y.narrow(0, 0, std::min<int64_t>(y.size(0), max_frames));
      if (persons < P) y = torch::cat({y, torch::zeros({y.size(0), P - persons, y.size(2)}, y.options())}, 1);
      x = y.to(m.dtype());
      caps[static_cast<size_t>(i)] = data::retimed_caption(caps[static_cast<size_t>(i)], slower);
      any = true;
    }
    clips[static_cast<size_t>(i)] = x;
    longest = std::max(longest, x.size(0));
  }
  if (!any) return b.lengths;
  auto out = torch::zeros({B, longest, P, m.size(3)}, m.options());
  std::vector<int64_t> lengths(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) {
    const auto& x = clips[static_cast<size_t>(i)];
    out[i].narrow(0, 0, x.size(0)).copy_(x);
    lengths[static_cast<size_t>(i)] = x.size(0);
  }
  m = out;
  return torch::tensor(lengths, torch::kLong);
}

std::map<std::string, double> retrieval_scores(const torch::Tensor& text, const torch::Tensor& motion, int64_t pool,
                                               int64_t seed) {
  const int64_t n = text.size(0);
  VIMO_CHECK(n >= 2 && motion.size(0) == n, "retrieval scores need at least 2 matched pairs");
  const int64_t p = std::min(pool, n), pools = n / p;
  // A fixed shuffle of the text rows: the control's captions belong to other clips (mostly).
  std::mt19937_64 rng(core::derive_seed(seed, kShuffleStream, 0));
  auto shuffled = text.index_select(0, eval::permutation(rng, n));
  std::map<std::string, double> m;
  std::vector<double> r(3, 0), rs(3, 0);
  double mm = 0;
  for (int64_t k = 0; k < pools; ++k) {
    auto t = text.narrow(0, k * p, p), mo = motion.narrow(0, k * p, p), ts = shuffled.narrow(0, k * p, p);
    auto a = eval::r_precision(t, mo, 3), b = eval::r_precision(ts, mo, 3);
    for (int j = 0; j < 3; ++j) r[j] += a[j] / pools, rs[j] += b[j] / pools;
    mm += eval::mm_dist(t, mo) / pools;
  }
  for (int j = 0; j < 3; ++j) {
    m["r_precision_top" + std::to_string(j + 1)] = r[j];
    m["r_precision_top" + std::to_string(j + 1) + "_shuffled"] = rs[j];
  }
  m["mm_dist"] = mm;
  m["pool"] = static_cast<double>(p);
  return m;
}

int train_evaluator(const EvaluatorConfig& c, const std::string& yaml) {
  // Data and tokenizer inputs are checked before the run directory is made.
  auto train_ds = open_packed_split(c.data.packed, "train");
  const fs::path stats_path = fs::path(c.data.packed) / "stats.safetensors";
  VIMO_CHECK(fs::exists(stats_path), "'" + stats_path.string() + "' does not exist; the evaluator normalizes features "
                                     "with the packed dataset's statistics (rerun `vimo data prepare`)");
  const int64_t feat = train_ds.frames(0, 0, 1).size(2);
  VIMO_CHECK(c.model.motion_features == feat, "model.motion_features=" + std::to_string(c.model.motion_features) +
                                                  " but '" + train_ds.path() + "' holds " + std::to_string(feat) +
                                                  "-d features");
  if (c.model.text_tokenizer == "clip_bpe")
    VIMO_CHECK(!c.data.clip_vocab.empty() && fs::exists(c.data.clip_vocab),
               "model.text_tokenizer=clip_bpe needs data.clip_vocab=FILE (CLIP's bpe_simple_vocab_16e6.txt.gz; "
               "open_clip ships it), got '" + c.data.clip_vocab + "'");
  const auto stats = data::Normalizer::load(stats_path.string());
  CaptionedClips val;
  if (fs::exists(fs::path(c.data.packed) / "val.h5"))
    val = captioned(open_packed_split(c.data.packed, "val"), stats, c.data.val_clips);
  else
    log::warn("no val split in '", c.data.packed, "': training the evaluator without validation");

  // Checked before the run directory is made.
  VIMO_CHECK(launch_env().world_size <= 1,
             "vimo eval train-evaluator runs on one process: its contrastive loss compares every caption with every "
             "motion of the whole batch, which per-rank batches would change; launch it without torchrun or srun");
  const auto dev = setup_run(c.run, c.dist, yaml);
  const fs::path run(c.run.dir);
  // The run's text tokenizer and statistics: load_evaluator finds them beside the checkpoints.
  std::string tok_path;
  if (c.model.text_tokenizer == "clip_bpe") {
    tok_path = (run / "bpe_simple_vocab_16e6.txt.gz").string();
    if (!fs::exists(tok_path)) core::write_file_atomic(tok_path, core::read_file(c.data.clip_vocab));
  } else {
    tok_path = (run / "text.model").string();
    if (!fs::exists(tok_path)) {
      std::vector<std::string> lines;
      for (const auto& cs : train_ds.index().captions)
        for (const auto& s : cs)
          if (!s.empty()) lines.push_back(s);
      // data.retime: the speed words in the share of captions that will carry them.
      if (c.data.retime > 0) {
        const size_t n = lines.size(), every = static_cast<size_t>(std::max(1.0, std::round(1.0 / c.data.retime)));
        for (size_t i = 0; i < n; i += every) lines.push_back(data::retimed_caption(lines[i], (i / every) % 2 == 0));
      }
      text::SentencePieceTrainOptions o;
      o.out = tok_path;
      o.vocab_size = static_cast<int>(c.model.text_vocab_size);
      o.model_type = "bpe";
      o.threads = std::max(1, c.run.threads);
      o.byte_fallback = true;
      log::info("evaluator: training a bpe text tokenizer (", o.vocab_size, " pieces) on ", lines.size(), " captions");
      text::train_sentencepiece_on(lines, o);
    }
  }
  if (!fs::exists(run / "stats.safetensors"))
    core::write_file_atomic((run / "stats.safetensors").string(), core::read_file(stats_path.string()));

  eval::LoadedEvaluator ev;
  ev.tokenizer = text::load_text_tokenizer(tok_path);
  auto o = c.model;
  if (o.text_vocab == 0) o.text_vocab = ev.tokenizer->vocab_size();
  VIMO_CHECK(o.text_vocab >= ev.tokenizer->vocab_size(),
             "model.text_vocab=" + std::to_string(o.text_vocab) + " is smaller than the tokenizer's " +
                 std::to_string(ev.tokenizer->vocab_size()) + " ids; use 0 (the tokenizer's size)");
  VIMO_CHECK(ev.tokenizer->bos_id() && ev.tokenizer->eos_id(), "text tokenizer '" + tok_path + "' has no start/end ids");
  ev.sot = *ev.tokenizer->bos_id(), ev.eot = *ev.tokenizer->eos_id();
  ev.model = eval::Evaluator(o);
  ev.model->to(dev);
  ev.normalizer = stats;

  auto lo = c.data.loader;
  lo.seed = c.run.seed;
  const std::string path = train_ds.path();
  auto loader = std::make_unique<data::ClipLoader>(std::move(train_ds), stats, lo);
  int64_t params = 0;
  for (const auto& p : ev.model->parameters()) params += p.numel();
  log::info("evaluator: ", params, " parameters; clips of '", path, "' in batches of ", lo.batch_size, " (",
            loader->batches_per_epoch(), " per epoch), ", val.clips.size(), " val clips, device ", dev.str());
  EvaluatorTask task(c, std::move(ev), std::move(loader), std::move(val), dev);
  Trainer trainer(trainer_options(c.run, c.train, c.optim, c.dist, dev, "evaluator"), task);
  return trainer.fit();
}

}  // namespace vimo::train

// The stage-2 task: forward on a batch, per-task validation and generated samples (pretrain_task.h).
#include "vimo/train/recipes/pretrain_task.h"

#include <cstdio>
#include <set>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/process_group.h"
#include "vimo/core/tensor_io.h"
#include "vimo/lm/loss.h"
#include "vimo/motion/features.h"
#include "vimo/motion/render.h"
#include "vimo/vim/dialogue.h"

namespace fs = std::filesystem;

namespace vimo::train {

vim::TaskMix task_mix(const PretrainConfig& c) {
  vim::TaskMix mix;
  for (const auto& n : c.data.tasks) mix.tasks.push_back(vim::parse_task(n, "data.tasks"));
  mix.weights = c.data.task_weights;
  mix.reaction_caption = c.data.reaction_caption;
  mix.caption_dropout = c.data.caption_dropout;
  return mix;
}

namespace {

bool is_reaction(vim::Task t) { return t == vim::Task::kA2B || t == vim::Task::kB2A; }

}  // namespace

std::vector<data::TokenSeq> eval_sequences(vim::VimModel& m, const data::TokenCache& cache, const vim::TaskMix& mix,
                                           int64_t per_task, int64_t max_length, int64_t seed) {
  std::vector<data::TokenSeq> out;
  vim::SampleStream stream(cache, m.templates(), mix, seed);
  for (vim::Task t : stream.tasks()) {
    const auto& clips = stream.clips_of(t);
    const int64_t n = std::min<int64_t>(per_task, static_cast<int64_t>(clips.size()));
    for (int64_t i = 0; i < n; ++i) {
      vim::Sample s;
      s.task = t;
      s.clip = clips[static_cast<size_t>(i * static_cast<int64_t>(clips.size()) / n)];
      s.with_caption = is_reaction(t) && i % 2 == 1 && m.templates().has(t, true);
      s.tmpl = static_cast<int>(i % static_cast<int64_t>(m.templates().get(t, s.with_caption).size()));
      s.caption = static_cast<int>(i);
      auto seq = vim::render_sequence(m.chat(), vim::build_conversation(m.templates(), s, cache.clip(s.clip), m.spec().layers),
                                      static_cast<int64_t>(t), m.spec().depth_head());
      if (static_cast<int64_t>(seq.ids.size()) <= max_length) out.push_back(std::move(seq));
    }
  }
  return out;
}

std::map<std::string, double> score_sequences(vim::VimModel& model, const std::vector<data::TokenSeq>& seqs, int64_t rows) {
  torch::NoGradGuard ng;
  auto& m = model.lm();
  const auto dev = m->device();
  const int64_t pad = model.vocab().special("<pad>");
  std::map<int64_t, std::array<double, 3>> acc;  // tag -> loss sum, targets, correct
  // On a multi-rank run each rank scores its slice of the sequences; the sums are over every rank's.
  auto& pg = core::process_group();
  const auto [first, last] = core::shard_range(static_cast<int64_t>(seqs.size()), pg.rank(), pg.world_size());
  const size_t lo = static_cast<size_t>(first), hi = static_cast<size_t>(last);
  for (size_t i = lo; i < hi; i += static_cast<size_t>(rows)) {
    std::vector<std::vector<data::TokenSeq>> group;
    for (size_t j = i; j < std::min(hi, i + static_cast<size_t>(rows)); ++j) group.push_back({seqs[j]});
    auto b = data::make_batch(group, pad);
    auto h = model.hidden(b);  // [rows, T, H]
    for (size_t j = 0; j < group.size(); ++j) {
      const auto r = static_cast<int64_t>(j);
      auto parts = lm::motion_lm_loss(m, h.narrow(0, r, 1), b.targets.narrow(0, r, 1),
                                      b.depth_targets.defined() ? b.depth_targets.narrow(0, r, 1) : torch::Tensor());
      auto& a = acc[group[j][0].tag];
      a[0] += parts.sum.item<double>();
      a[1] += static_cast<double>(parts.targets);
      a[2] += static_cast<double>(parts.correct.item<int64_t>());
    }
  }
  if (pg.distributed()) {  // every rank's tags (those of all sequences), then the sums
    std::set<int64_t> tags;
    for (const auto& q : seqs) {
      VIMO_CHECK(q.tag >= 0, "score_sequences: a sequence has the negative tag " + std::to_string(q.tag));
      tags.insert(q.tag);
    }
    auto dense = torch::zeros({*tags.rbegin() + 1, 3}, torch::kFloat64);
    for (const auto& [tag, a] : acc)
      for (int k = 0; k < 3; ++k) dense[tag][k] = a[static_cast<size_t>(k)];
    pg.sum(dense);
    acc.clear();
    for (int64_t tag : tags) acc[tag] = {dense[tag][0].item<double>(), dense[tag][1].item<double>(), dense[tag][2].item<double>()};
  }
  std::map<std::string, double> out;
  double loss = 0, tgt = 0, ok = 0;
  for (const auto& [tag, a] : acc) {
    const std::string name = vim::tag_name(tag);
    out["loss_" + name] = a[0] / std::max(1.0, a[1]);
    out["accuracy_" + name] = a[2] / std::max(1.0, a[1]);
    loss += a[0], tgt += a[1], ok += a[2];
  }
  if (tgt > 0) {
    out["loss"] = loss / tgt;
    out["accuracy"] = ok / tgt;
  }
  return out;
}

PretrainTask::PretrainTask(const PretrainConfig& c, vim::VimModel model, std::shared_ptr<data::TokenCache> train,
                           std::shared_ptr<data::TokenCache> val)
    : c_(c), model_(std::move(model)), train_(std::move(train)), val_(std::move(val)) {
  const auto mix = task_mix(c_);
  stream_ = std::make_unique<vim::SampleStream>(*train_, model_.templates(), mix, c_.run.seed);
  vim::BatchOptions bo;
  bo.batch_size = c_.data.batch_size;
  bo.max_length = c_.data.max_length;
  bo.pack = c_.data.pack;
  bo.bucket_batches = c_.data.bucket_batches;
  bo.layers = model_.spec().layers;
  bo.depth = model_.spec().depth_head();
  bo.shard_rank = core::process_group().rank();
  bo.shard_count = core::process_group().world_size();
  const int64_t pad = model_.vocab().special("<pad>");
  batches_ = std::make_unique<vim::BatchStream>(*train_, *stream_, model_.templates(), model_.chat(), pad, bo, c_.run.seed);
  // Samples that cannot fit the context: counted per task over every eligible clip (first phrasing).
  for (vim::Task t : stream_->tasks()) {
    int64_t over = 0;
    std::string first;
    for (int64_t clip : stream_->clips_of(t)) {
      auto tc = train_->clip(clip);
      vim::Sample s{t, clip, 0, 0, false};
      const auto seq = vim::render_sequence(model_.chat(), vim::build_conversation(model_.templates(), s, tc, bo.layers), 0, bo.depth);
      if (static_cast<int64_t>(seq.ids.size()) > bo.max_length && over++ < 3) first += " " + tc.id;
    }
    if (over > 0)
      log::warn("pretrain: ", over, " of ", stream_->clips_of(t).size(), " ", vim::task_name(t), " samples are longer than data.max_length=",
                bo.max_length, " and will be skipped (clips", first, over > 3 ? " ..." : "", "); raise data.max_length or lower model.motion_layers");
  }
  if (val_ && c_.data.val_per_task > 0) {
    val_stream_ = std::make_unique<vim::SampleStream>(*val_, model_.templates(), mix, c_.run.seed);
    val_seqs_ = eval_sequences(model_, *val_, mix, c_.data.val_per_task, bo.max_length, c_.run.seed);
  }
}

std::vector<ParamGroup> PretrainTask::param_groups() {
  ParamGroup main, rows;
  main.name = "model";
  rows.name = "new_rows";
  rows.weight_decay = 0.0;
  if (c_.optim.new_rows_lr > 0) rows.lr_scale = c_.optim.new_rows_lr / std::max(1e-30, c_.optim.o.lr);
  for (const auto& p : model_.lm()->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const bool tail = p.key().size() > 5 && p.key().substr(p.key().size() - 5) == ".tail";
    (tail ? rows : main).params.push_back(p.value());
  }
  return {main, rows};
}

StepOutput PretrainTask::forward(int64_t) { return lm_step(model_, batches_->next()); }

StepOutput lm_step(vim::VimModel& model, const data::LmBatch& b) {
  auto parts = model.loss(model.hidden(b), b);
  StepOutput out;
  out.loss = parts.sum;
  out.items = parts.targets;
  out.samples = b.sequences;
  const double n = std::max<int64_t>(1, parts.targets);
  out.logs = {{"accuracy", parts.correct.to(torch::kFloat64) / n},
              {"tokens", torch::tensor(static_cast<double>(b.tokens), torch::kFloat64)},
              {"sequences", torch::tensor(static_cast<double>(b.sequences), torch::kFloat64)},
              {"fill", torch::tensor(static_cast<double>(b.tokens) / static_cast<double>(b.ids.numel()), torch::kFloat64)}};
  return out;
}

std::map<std::string, double> PretrainTask::validate() {
  if (val_seqs_.empty()) return {};
  auto m = score_sequences(model_, val_seqs_, c_.data.batch_size);
  if (c_.data.val_generate > 0 && core::process_group().is_main()) write_samples();
  return m;
}

void PretrainTask::write_samples() {
  const auto& spec = model_.spec();
  std::vector<vim::Request> reqs;
  std::vector<data::TokenClip> truth;
  for (vim::Task t : val_stream_->tasks()) {
    const auto& clips = val_stream_->clips_of(t);
    for (int64_t i = 0; i < std::min<int64_t>(c_.data.val_generate, static_cast<int64_t>(clips.size())); ++i) {
      auto tc = val_->clip(clips[static_cast<size_t>(i)]);
      reqs.push_back(clip_request(t, tc, i));
      truth.push_back(std::move(tc));
    }
  }
  const auto g = vim::GenerateSettings::from(c_.generate);
  auto res = model_.generate(reqs, g);
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step_));
  const fs::path dir = fs::path(c_.run.dir) / "samples" / name;
  fs::create_directories(dir);
  std::string captions;
  for (size_t i = 0; i < res.size(); ++i) {
    const auto& r = res[i];
    const std::string stem = vim::task_name(r.task) + "_" + std::to_string(i) + "_" + truth[i].id;
    if (!vim::response_motion(r.task)) {
      captions += vim::task_name(r.task) + "\t" + truth[i].id + "\ttruth: " + (truth[i].captions.empty() ? "" : truth[i].captions[0]) +
                  "\n\t\tgenerated: " + r.text + "\n";
      continue;
    }
    if (r.codes.size(0) == 0) {
      captions += vim::task_name(r.task) + "\t" + truth[i].id + "\tgenerated an empty motion block\n";
      continue;
    }
    torch::Tensor motion;  // [T, P, 262]
    if (vim::task_from_caption(r.task)) {
      motion = model_.decode_motion(r.codes);
    } else {  // the pair: the given actor (decoded from its codes) and the generated reactor
      const int64_t actor = r.task == vim::Task::kA2B ? 0 : 1;
      const int64_t T = std::min(r.codes.size(0), truth[i].codes.size(0));
      auto a = model_.decode_motion(truth[i].codes.narrow(0, 0, T).narrow(1, actor, 1).narrow(2, 0, spec.layers));
      auto b = model_.decode_motion(r.codes.narrow(0, 0, T));
      motion = actor == 0 ? torch::cat({a, b}, 1) : torch::cat({b, a}, 1);
    }
    core::save_npy((dir / (stem + ".npy")).string(), motion);
    motion::RenderOptions ro;
    ro.caption = vim::task_name(r.task) + ": " + (reqs[i].caption.empty() ? truth[i].id : reqs[i].caption);
    motion::render_gif(motion::features_to_joints(motion), (dir / (stem + ".gif")).string(), ro);
    captions += vim::task_name(r.task) + "\t" + truth[i].id + "\t" + ro.caption + " -> " + stem + ".gif\n";
  }
  core::write_file_atomic((dir / "samples.txt").string(), captions);
  log::info("pretrain: samples of step ", step_, " in ", dir.string());
}

core::NamedTensors PretrainTask::weights() { return vim::trainable_tensors(model_.lm()); }
void PretrainTask::load_weights(const std::string& path) { vim::load_trainable_tensors(model_.lm(), path); }

std::map<std::string, std::string> PretrainTask::weights_metadata() {
  return {{"format", "vimo-lm"}, {"stage", model_.spec().stage}, {"base", model_.spec().base},
          {"vocab_size", std::to_string(model_.lm()->config().vocab_size)}};
}

}  // namespace vimo::train

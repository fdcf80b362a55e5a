// Scoring a trained LM run on a split: per-task loss and token accuracy, generated m2t captions
// (refs/hyps for `vimo eval captions`) and the validity of generated t2m motions.
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/progress.h"
#include "vimo/motion/features.h"
#include "vimo/train/recipes/pretrain_task.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::train {
namespace {

// A decoded motion is valid when it is finite, at least 16 frames long (the dataset minimum) and
// every joint stays within 20 m of the origin.
bool valid_motion(const torch::Tensor& f) {
  if (f.size(0) < 16 || !torch::isfinite(f).all().item<bool>()) return false;
  return motion::features_to_joints(f).abs().max().item<double>() < 20.0;
}

}  // namespace

json score_run(vim::VimModel& model, const ScoreOptions& o) {
  auto cache = data::TokenCache::open(o.split);
  const auto& spec = model.spec();
  VIMO_CHECK(cache.info().codebook_size == spec.codebook_size,
             "token cache '" + o.split + "' has K=" + std::to_string(cache.info().codebook_size) + " codes per level, the LM run K=" +
                 std::to_string(spec.codebook_size) + "; encode the split with the run's tokenizer (" + spec.tokenizer_run + ")");
  VIMO_CHECK(cache.info().num_quantizers >= spec.layers, "token cache '" + o.split + "' has Q=" +
                                                             std::to_string(cache.info().num_quantizers) + ", the LM needs " +
                                                             std::to_string(spec.layers) + " levels");
  vim::TaskMix mix;
  mix.tasks = spec.tasks;
  mix.weights.assign(spec.tasks.size(), 1.0);
  const int64_t ctx = model.lm()->config().max_position_embeddings;
  model.lm()->eval();
  auto seqs = eval_sequences(model, cache, mix, o.per_task, ctx, 0);
  json out = {{"split", o.split}, {"sequences", seqs.size()}, {"tasks", score_sequences(model, seqs, o.rows)}};
  fs::create_directories(o.out);
  vim::SampleStream stream(cache, model.templates(), mix, 0);
  auto has = [&](vim::Task t) { return std::find(stream.tasks().begin(), stream.tasks().end(), t) != stream.tasks().end(); };
  if (o.generate > 0 && has(vim::Task::kM2T)) {
    json refs = json::object(), hyps = json::object();
    const auto& clips = stream.clips_of(vim::Task::kM2T);
    const int64_t n = std::min<int64_t>(o.generate, static_cast<int64_t>(clips.size()));
    core::Progress prog("m2t captions", n);
    for (int64_t i = 0; i < n; i += o.rows) {
      std::vector<vim::Request> reqs;
      std::vector<std::string> ids;
      for (int64_t j = i; j < std::min(n, i + o.rows); ++j) {
        auto tc = cache.clip(clips[static_cast<size_t>(j)]);
        vim::Request r;
        r.task = vim::Task::kM2T;
        r.codes = tc.codes;
        r.tmpl = static_cast<int>(j);
        reqs.push_back(r);
        ids.push_back(tc.id);
        refs[tc.id] = tc.captions;
      }
      auto res = model.generate(reqs, o.sampling);
      for (size_t k = 0; k < res.size(); ++k) hyps[ids[k]] = res[k].text;
      prog.add(static_cast<int64_t>(res.size()));
    }
    prog.finish();
    core::write_file_atomic((fs::path(o.out) / "m2t_refs.json").string(), refs.dump(1) + "\n");
    core::write_file_atomic((fs::path(o.out) / "m2t_hyps.json").string(), hyps.dump(1) + "\n");
    out["m2t"] = {{"generated", hyps.size()}};
  }
  if (o.generate > 0 && has(vim::Task::kT2M)) {
    const auto& clips = stream.clips_of(vim::Task::kT2M);
    const int64_t n = std::min<int64_t>(o.generate, static_cast<int64_t>(clips.size()));
    int64_t valid = 0, frames = 0;
    json bad = json::array();
    core::Progress prog("t2m motions", n);
    for (int64_t i = 0; i < n; i += o.rows) {
      std::vector<vim::Request> reqs;
      std::vector<std::string> ids;
      for (int64_t j = i; j < std::min(n, i + o.rows); ++j) {
        auto tc = cache.clip(clips[static_cast<size_t>(j)]);
        vim::Request r;
        r.caption = tc.captions.empty() ? "" : tc.captions[static_cast<size_t>(j) % tc.captions.size()];
        r.tmpl = static_cast<int>(j);
        reqs.push_back(r);
        ids.push_back(tc.id);
      }
      auto res = model.generate(reqs, o.sampling);
      for (size_t k = 0; k < res.size(); ++k) {
        const bool ok = res[k].codes.size(0) > 0 && valid_motion(model.decode_motion(res[k].codes));
        if (ok) ++valid, frames += res[k].codes.size(0) * spec.downsample;
        else bad.push_back(ids[k]);
      }
      prog.add(static_cast<int64_t>(res.size()));
    }
    prog.finish();
    out["t2m"] = {{"generated", n}, {"valid", valid}, {"mean_frames", valid ? static_cast<double>(frames) / valid : 0.0},
                  {"invalid_ids", bad}};
  }
  core::write_file_atomic((fs::path(o.out) / "score.json").string(), out.dump(2) + "\n");
  return out;
}

}  // namespace vimo::train

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

vim::Request clip_request(vim::Task t, const data::TokenClip& clip, int64_t i) {
  const bool reaction = t == vim::Task::kA2B || t == vim::Task::kB2A;
  vim::Request r;
  r.task = t;
  r.tmpl = static_cast<int>(i);
  if (!vim::task_from_caption(t)) r.codes = clip.codes;
  const bool caption = vim::task_from_caption(t) || (reaction && i % 2 == 1);
  if (caption && !clip.captions.empty()) r.caption = clip.captions[static_cast<size_t>(i) % clip.captions.size()];
  return r;
}

void generate_batched(vim::VimModel& model, int64_t n, int64_t rows, const vim::GenerateSettings& s,
                      const std::function<vim::Request(int64_t)>& make,
                      const std::function<void(int64_t, const vim::Result&)>& done, const std::string& label) {
  core::Progress prog(label, n);
  for (int64_t i = 0; i < n; i += rows) {
    std::vector<vim::Request> reqs;
    for (int64_t j = i; j < std::min(n, i + rows); ++j) reqs.push_back(make(j));
    auto res = model.generate(reqs, s);
    for (size_t k = 0; k < res.size(); ++k) done(i + static_cast<int64_t>(k), res[k]);
    prog.add(static_cast<int64_t>(res.size()));
  }
  prog.finish();
}

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
    std::vector<data::TokenClip> tc(std::min<size_t>(static_cast<size_t>(o.generate), clips.size()));
    generate_batched(
        model, static_cast<int64_t>(tc.size()), o.rows, o.sampling,
        [&](int64_t j) {
          tc[static_cast<size_t>(j)] = cache.clip(clips[static_cast<size_t>(j)]);
          return clip_request(vim::Task::kM2T, tc[static_cast<size_t>(j)], j);
        },
        [&](int64_t j, const vim::Result& r) {
          const auto& c = tc[static_cast<size_t>(j)];
          refs[c.id] = c.captions;
          hyps[c.id] = r.text;
        },
        "m2t captions");
    core::write_file_atomic((fs::path(o.out) / "m2t_refs.json").string(), refs.dump(1) + "\n");
    core::write_file_atomic((fs::path(o.out) / "m2t_hyps.json").string(), hyps.dump(1) + "\n");
    out["m2t"] = {{"generated", hyps.size()}};
  }
  if (o.generate > 0 && has(vim::Task::kT2M)) {
    const auto& clips = stream.clips_of(vim::Task::kT2M);
    const int64_t n = std::min<int64_t>(o.generate, static_cast<int64_t>(clips.size()));
    int64_t valid = 0, frames = 0;
    json bad = json::array();
    std::vector<std::string> ids(static_cast<size_t>(n));
    generate_batched(
        model, n, o.rows, o.sampling,
        [&](int64_t j) {
          auto c = cache.clip(clips[static_cast<size_t>(j)]);
          ids[static_cast<size_t>(j)] = c.id;
          return clip_request(vim::Task::kT2M, c, j);
        },
        [&](int64_t j, const vim::Result& r) {
          const bool ok = r.codes.size(0) > 0 && valid_motion(model.decode_motion(r.codes));
          if (ok) ++valid, frames += r.codes.size(0) * spec.downsample;
          else bad.push_back(ids[static_cast<size_t>(j)]);
        },
        "t2m motions");
    out["t2m"] = {{"generated", n}, {"valid", valid}, {"mean_frames", valid ? static_cast<double>(frames) / valid : 0.0},
                  {"invalid_ids", bad}};
  }
  core::write_file_atomic((fs::path(o.out) / "score.json").string(), out.dump(2) + "\n");
  return out;
}

}  // namespace vimo::train

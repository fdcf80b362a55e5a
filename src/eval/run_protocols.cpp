// The t2m, m2t and reaction protocols over an LM run: requests per clip of a split, generation cached
// batch by batch under <run>/eval/samples/, embeddings by the evaluator, replicated metrics, controls.
#include "vimo/eval/run_protocols.h"

#include <chrono>
#include <filesystem>
#include <random>

#include <ATen/CPUGeneratorImpl.h>
#include <yaml-cpp/yaml.h>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/progress.h"
#include "vimo/core/rng.h"
#include "vimo/core/run.h"
#include "vimo/data/token_cache.h"
#include "vimo/eval/captions.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/eval/protocols.h"
#include "vimo/motion/features.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace vimo::eval {
namespace {

constexpr uint64_t kGenCaption = 0x47454e43415054ull;  // "GENCAPT"
constexpr uint64_t kRandomCodes = 0x52414e44434f44ull;  // "RANDCOD"

// Everything a protocol reads: the LM run, the evaluator, the split's codes and its real motions.
struct Setup {
  vim::VimModel model;
  LoadedEvaluator ev;
  data::TokenCache cache;
  std::vector<int64_t> rows;          // token-cache rows evaluated (captioned, both persons, in the packed split)
  std::vector<torch::Tensor> raw;     // their real motions, raw features [T, 2, F]
  CaptionedSplit split;               // the same normalized for the evaluator, with every caption
  fs::path eval_dir;
};

std::string run_tokens_dir(const std::string& run) {
  const fs::path p = fs::path(run) / "config.yaml";
  if (!fs::exists(p)) return "";
  try {
    auto root = YAML::LoadFile(p.string());
    if (root["data"] && root["data"]["tokens"]) return root["data"]["tokens"].as<std::string>();
  } catch (const std::exception&) {
  }
  return "";
}

Setup open_setup(const RunProtocolOptions& o, vim::Task task) {
  VIMO_CHECK(o.replications >= 1 && o.generations >= 1, "--replications and --generations must be at least 1");
  const auto dev = core::resolve_device("auto");
  auto model = vim::VimModel::load_run(o.run, dev);
  model.check_task(task);
  auto ev = load_evaluator(o.evaluator, o.clip_vocab, dev);
  const std::string tokens = o.tokens.empty() ? run_tokens_dir(o.run) : o.tokens;
  VIMO_CHECK(!tokens.empty(), "run '" + o.run + "' names no token cache (data.tokens); pass --tokens tokens/DIR");
  const std::string tpath = (fs::path(tokens) / (o.split + ".h5")).string();
  VIMO_CHECK(fs::exists(tpath), "token cache split '" + tpath + "' does not exist; make it with `vimo tokenizer encode`");
  auto cache = data::TokenCache::open(tpath);
  cache.check_layout(model.spec().codebook_size, cache.info().num_quantizers, "LM run '" + o.run + "'");
  VIMO_CHECK(cache.info().num_quantizers >= model.spec().layers,
             "token cache '" + tpath + "' has fewer levels than the LM run reads");
  const std::string packed = o.packed.empty() ? ev.packed_dir() : o.packed;
  VIMO_CHECK(!packed.empty(), "evaluator '" + ev.path + "' names no packed dataset; pass --packed data/packed/DIR");
  const std::string ppath = (fs::path(packed) / (o.split + ".h5")).string();
  VIMO_CHECK(fs::exists(ppath), "packed split '" + ppath + "' does not exist (the real motions of the split)");
  auto ds = data::PackedDataset::open(ppath);
  VIMO_CHECK(ev.normalizer.defined(), "evaluator '" + ev.path + "' has no stats.safetensors beside it");
  VIMO_CHECK(ds.frames(0, 0, 1).size(2) == ev.model->options().motion_features,
             "'" + ppath + "' holds features of another size than the evaluator '" + ev.path + "' reads");
  std::map<std::string, int64_t> by_id;
  for (int64_t i = 0; i < ds.size(); ++i) by_id[ds.index().ids[i]] = i;
  Setup s{model, std::move(ev), std::move(cache), {}, {}, {}, fs::path(o.run) / "eval"};
  int64_t missing = 0;
  for (int64_t i = 0; i < s.cache.size(); ++i) {
    if (o.limit > 0 && static_cast<int64_t>(s.rows.size()) >= o.limit) break;
    auto c = s.cache.clip(i);
    if (c.captions.empty() || c.persons < 2) continue;
    auto it = by_id.find(c.id);
    if (it == by_id.end()) {
      ++missing;
      continue;
    }
    auto m = ds.clip(it->second).motion;
    if (m.size(1) < 2) continue;
    s.rows.push_back(i);
    s.raw.push_back(m);
    s.split.ids.push_back(c.id);
    s.split.clips.push_back(s.ev.normalizer.normalize(m));
    s.split.captions.push_back(c.captions);
  }
  if (missing) log::warn("eval: ", missing, " clips of '", tpath, "' are not in '", ppath, "' and are left out");
  VIMO_CHECK(s.rows.size() >= 2, "fewer than 2 two-person captioned clips of '" + tpath + "' to evaluate");
  fs::create_directories(s.eval_dir);
  return s;
}

nlohmann::json result_json(const vim::Result& r) {
  nlohmann::json j = {{"text", r.text}};
  if (r.codes.defined() && r.codes.numel() > 0) {
    auto c = r.codes.to(torch::kLong).contiguous();
    j["shape"] = c.sizes().vec();
    j["codes"] = std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
  }
  return j;
}

vim::Result result_from(const nlohmann::json& j, vim::Task t) {
  vim::Result r;
  r.task = t;
  r.text = j.value("text", std::string());
  if (j.contains("codes")) {
    auto shape = j["shape"].get<std::vector<int64_t>>();
    auto v = j["codes"].get<std::vector<int64_t>>();
    r.codes = torch::tensor(v, torch::kLong).view(shape);
  } else {
    r.codes = torch::zeros({0, 1, 1}, torch::kLong);
  }
  return r;
}

// Generates every request in batches of `rows`, cached under `dir` (cached_batches).
std::vector<vim::Result> cached_generate(vim::VimModel& model, const std::vector<vim::Request>& reqs,
                                         const vim::GenerateSettings& g, int64_t rows, const fs::path& dir,
                                         const std::string& key, const std::string& label) {
  std::vector<vim::Result> out(reqs.size());
  cached_batches(
      dir, key, static_cast<int64_t>(reqs.size()), rows, label,
      [&](int64_t i, int64_t e) {
        auto res = model.generate(std::vector<vim::Request>(reqs.begin() + i, reqs.begin() + e), g);
        nlohmann::json j = nlohmann::json::array();
        for (const auto& r : res) j.push_back(result_json(r));
        return j;
      },
      [&](int64_t k, const nlohmann::json& j) { out[static_cast<size_t>(k)] = result_from(j, reqs[static_cast<size_t>(k)].task); });
  return out;
}

// Decoded features of generated codes; an empty response is one frame of the dataset mean (zeros
// after normalization), counted as invalid.
torch::Tensor decode_or_blank(vim::VimModel& model, const torch::Tensor& codes, bool* valid) {
  if (!codes.defined() || codes.size(0) == 0) {
    *valid = false;
    return torch::Tensor();
  }
  auto f = model.decode_motion(codes).cpu();
  *valid = torch::isfinite(f).all().item<bool>();
  if (!*valid) f = torch::nan_to_num(f, 0.0, 0.0, 0.0);
  return f;
}

torch::Tensor normalized_or_mean(const LoadedEvaluator& ev, const torch::Tensor& f, int64_t persons) {
  if (!f.defined()) return torch::zeros({1, persons, ev.model->options().motion_features});
  return ev.normalizer.normalize(f);
}

ojson caption_row(const CaptionScores& c) {
  auto v = [](double x) { return ojson{{"mean", x}, {"ci95", 0.0}}; };
  ojson r = {{"bleu_1", v(c.bleu[0])}, {"bleu_4", v(c.bleu[3])}, {"rouge_l", v(c.rouge_l)}, {"cider", v(c.cider_d)}};
  if (c.meteor) r["meteor"] = v(*c.meteor);
  return r;
}

void write_outputs(const RunProtocolOptions& o, const Setup& s, const std::string& task, ojson& j) {
  const std::string out = o.out.empty() ? (s.eval_dir / (task + "_" + o.split + ".json")).string() : o.out;
  write_protocol_report(out, j);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The captions of pass k: clip i's caption drawn by (seed, k, i).
std::vector<std::string> pass_captions(const Setup& s, int64_t seed, int64_t k) {
  std::vector<std::string> caps;
  const int64_t N = static_cast<int64_t>(s.rows.size());
  for (int64_t i = 0; i < N; ++i) {
    const auto& cs = s.split.captions[i];
    std::mt19937_64 rng(core::derive_seed(seed, kGenCaption, k * N + i));
    caps.push_back(cs[core::below(rng, cs.size())]);
  }
  return caps;
}

MetricProtocol protocol_of(const RunProtocolOptions& o, int64_t n, int64_t mm_k = 0) {
  auto p = metric_protocol(o.protocol);
  if (o.batch_size > 0) p.batch_size = o.batch_size;
  return fit_protocol(p, n, mm_k);
}

}  // namespace

nlohmann::ordered_json evaluate_t2m(const RunProtocolOptions& o) {
  auto s = open_setup(o, vim::Task::kT2M);
  const auto p = protocol_of(o, static_cast<int64_t>(s.rows.size()), o.mm_texts > 0 ? o.mm_repeats : 0);
  const int64_t N = static_cast<int64_t>(s.rows.size()), R = o.replications, G = std::min(o.generations, R);
  const int64_t D = s.ev.model->options().embed_dim;
  auto gt_motion = embed_clips(s.ev.model, s.split.clips);
  auto j = protocol_json("t2m", o.split, p, R);
  j["guidance"] = o.sampling.guidance;

  // Ground truth: real motions with a random caption each.
  auto gt_text = replicated_caption_embeddings(s.ev, s.split, R, o.seed);
  EmbeddingSet gt{gt_text, gt_motion, gt_motion, torch::Tensor()};
  j["rows"]["gt"] = protocol_row(p, score_replications(gt, p, R, o.seed));

  // The model: G generation passes, each with its own captions and sampling seed.
  auto t0 = std::chrono::steady_clock::now();
  auto text = torch::empty({R, N, D}), motion = torch::empty({R, N, D});
  int64_t valid = 0, total = 0;
  for (int64_t k = 0; k < G; ++k) {
    auto caps = pass_captions(s, o.seed, k);
    std::vector<vim::Request> reqs;
    for (int64_t i = 0; i < N; ++i) {
      vim::Request r;
      r.task = vim::Task::kT2M;
      r.caption = caps[i];
      r.tmpl = static_cast<int>(i);
      reqs.push_back(r);
    }
    auto g = o.sampling;
    g.seed = o.sampling.seed + static_cast<uint64_t>(k);
    auto res = cached_generate(s.model, reqs, g, o.rows, s.eval_dir / "samples" / ("t2m_" + o.split + "_pass" + std::to_string(k)),
                               sample_key(o.run, "t2m", g, reqs.size(), o.rows), "t2m pass " + std::to_string(k));
    std::vector<torch::Tensor> gen;
    for (int64_t i = 0; i < N; ++i) {
      bool ok = false;
      auto f = decode_or_blank(s.model, res[i].codes, &ok);
      valid += ok && f.size(0) >= 16, ++total;
      gen.push_back(normalized_or_mean(s.ev, f, 2));
    }
    auto me = embed_clips(s.ev.model, gen);
    auto te = embed_ids(s.ev.model, s.ev.tokenize(caps), s.ev.eot);
    for (int64_t r = k; r < R; r += G) motion[r].copy_(me), text[r].copy_(te);
  }
  const double gen_s = seconds_since(t0);
  EmbeddingSet model_set{text, motion, gt_motion, torch::Tensor()};
  if (o.mm_texts > 0) {
    const int64_t T = std::min<int64_t>(o.mm_texts, N), K = o.mm_repeats;
    auto caps = pass_captions(s, o.seed, 0);
    std::vector<vim::Request> reqs;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k) {
        vim::Request r;
        r.task = vim::Task::kT2M;
        r.caption = caps[t];
        r.tmpl = static_cast<int>(t);
        reqs.push_back(r);
      }
    auto g = o.sampling;
    if (g.greedy) log::warn("eval t2m: MultiModality with greedy decoding measures nothing (every repeat is the same)");
    auto res = cached_generate(s.model, reqs, g, o.rows, s.eval_dir / "samples" / ("t2m_" + o.split + "_mm"),
                               sample_key(o.run, "t2m_mm", g, reqs.size(), o.rows), "t2m multimodality");
    std::vector<torch::Tensor> gen;
    for (const auto& r : res) {
      bool ok = false;
      gen.push_back(normalized_or_mean(s.ev, decode_or_blank(s.model, r.codes, &ok), 2));
    }
    model_set.mm_motion = embed_clips(s.ev.model, gen).view({T, K, D});
  }
  j["rows"]["model"] = protocol_row(p, score_replications(model_set, p, R, o.seed));

  // Control and ceiling from one read of each clip's cached codes: uniformly random codes of the
  // clip's token length, and the clip's own codes at the LM's motion levels (scored with the GT
  // captions: no generator of this run can beat the tokenizer at the levels it reads). Both decoded.
  {
    const auto& sp = s.model.spec();
    std::vector<torch::Tensor> random_gen, real_gen;
    for (int64_t i = 0; i < N; ++i) {
      const auto c = s.cache.clip(s.rows[i]);
      auto gen_rng = at::make_generator<at::CPUGeneratorImpl>(core::derive_seed(o.seed, kRandomCodes, i));
      auto codes = torch::randint(sp.codebook_size, {std::max<int64_t>(1, c.codes.size(0)), 2, sp.layers}, gen_rng,
                                  torch::kLong);
      bool ok = false;
      random_gen.push_back(normalized_or_mean(s.ev, decode_or_blank(s.model, codes, &ok), 2));
      real_gen.push_back(normalized_or_mean(s.ev, decode_or_blank(s.model, c.codes.narrow(2, 0, sp.layers), &ok), 2));
    }
    auto te = embed_ids(s.ev.model, s.ev.tokenize(pass_captions(s, o.seed, 0)), s.ev.eot);
    EmbeddingSet ctrl{te, embed_clips(s.ev.model, random_gen), gt_motion, torch::Tensor()};
    j["rows"]["random_tokens"] = protocol_row(p, score_replications(ctrl, p, R, o.seed));
    EmbeddingSet ceil{gt_text, embed_clips(s.ev.model, real_gen), gt_motion, torch::Tensor()};
    j["rows"]["gt_tokens"] = protocol_row(p, score_replications(ceil, p, R, o.seed));
  }
  j["clips"] = N;
  j["generations"] = G;
  j["valid_motions"] = {{"valid", valid}, {"total", total}};
  j["generation_seconds"] = gen_s;
  write_outputs(o, s, "t2m", j);
  return j;
}

nlohmann::ordered_json evaluate_m2t(const RunProtocolOptions& o) {
  auto s = open_setup(o, vim::Task::kM2T);
  const auto p = protocol_of(o, static_cast<int64_t>(s.rows.size()));
  const int64_t N = static_cast<int64_t>(s.rows.size()), R = o.replications;
  auto motion = embed_clips(s.ev.model, s.split.clips);
  auto j = protocol_json("m2t", o.split, p, R);
  EmbeddingSet gt{replicated_caption_embeddings(s.ev, s.split, R, o.seed), motion, torch::Tensor(), torch::Tensor()};
  j["rows"]["gt"] = protocol_row(p, score_replications(gt, p, R, o.seed));

  auto t0 = std::chrono::steady_clock::now();
  std::vector<vim::Request> reqs;
  for (int64_t i = 0; i < N; ++i) {
    vim::Request r;
    r.task = vim::Task::kM2T;
    r.codes = s.cache.clip(s.rows[i]).codes;
    r.tmpl = static_cast<int>(i);
    reqs.push_back(r);
  }
  auto res = cached_generate(s.model, reqs, o.sampling, o.rows, s.eval_dir / "samples" / ("m2t_" + o.split),
                             sample_key(o.run, "m2t", o.sampling, reqs.size(), o.rows), "m2t captions");
  const double gen_s = seconds_since(t0);
  std::vector<std::string> hyps;
  std::vector<CaptionSet> sets;
  nlohmann::json refs_j = nlohmann::json::object(), hyps_j = nlohmann::json::object();
  int64_t empty = 0;
  for (int64_t i = 0; i < N; ++i) {
    const auto c = s.cache.clip(s.rows[i]);
    std::string h = res[i].text;
    if (h.find_first_not_of(" \t\n") == std::string::npos) ++empty, h = ".";  // scored as a caption with no words
    hyps.push_back(h);
    sets.push_back({c.id, c.captions, h});
    refs_j[c.id] = c.captions;
    hyps_j[c.id] = res[i].text;
  }
  core::write_file_atomic((s.eval_dir / ("m2t_" + o.split + "_refs.json")).string(), refs_j.dump(1) + "\n");
  core::write_file_atomic((s.eval_dir / ("m2t_" + o.split + "_hyps.json")).string(), hyps_j.dump(1) + "\n");
  EmbeddingSet model_set{embed_ids(s.ev.model, s.ev.tokenize(hyps), s.ev.eot), motion, torch::Tensor(), torch::Tensor()};
  auto row = protocol_row(p, score_replications(model_set, p, R, o.seed));
  const auto cap = caption_scores(sets);
  const ojson crow = caption_row(cap);
  for (const auto& [k, v] : crow.items()) row[k] = v;
  j["rows"]["model"] = row;
  j["clips"] = N;
  j["empty_captions"] = empty;
  if (!cap.meteor) j["meteor_note"] = cap.meteor_note;
  j["generation_seconds"] = gen_s;
  write_outputs(o, s, "m2t", j);
  return j;
}

nlohmann::ordered_json evaluate_reaction(const RunProtocolOptions& o) {
  auto s = open_setup(o, vim::Task::kA2B);
  s.model.check_task(vim::Task::kB2A);
  const auto p = protocol_of(o, 2 * static_cast<int64_t>(s.rows.size()));
  const int64_t N = static_cast<int64_t>(s.rows.size()), R = o.replications;
  const int64_t L = s.model.spec().layers;
  auto j = protocol_json("reaction", o.split, p, R);

  // Both directions pooled: rows [0, N) are A -> B (B generated), [N, 2N) are B -> A.
  std::vector<vim::Request> reqs;
  for (int dir = 0; dir < 2; ++dir)
    for (int64_t i = 0; i < N; ++i) {
      vim::Request r;
      r.task = dir == 0 ? vim::Task::kA2B : vim::Task::kB2A;
      r.codes = s.cache.clip(s.rows[i]).codes;
      r.tmpl = static_cast<int>(i);
      reqs.push_back(r);
    }
  auto t0 = std::chrono::steady_clock::now();
  auto res = cached_generate(s.model, reqs, o.sampling, o.rows, s.eval_dir / "samples" / ("reaction_" + o.split),
                             sample_key(o.run, "reaction", o.sampling, reqs.size(), o.rows), "reactions");
  const double gen_s = seconds_since(t0);
  auto caps = pass_captions(s, o.seed, 0);
  std::vector<std::string> texts;
  std::vector<torch::Tensor> real2, gen;
  double err = 0, err_ctrl = 0;
  int64_t frames = 0;
  for (int64_t k = 0; k < 2 * N; ++k) {
    const int64_t i = k % N, reactor = k < N ? 1 : 0, actor = 1 - reactor;
    const auto c = s.cache.clip(s.rows[i]);
    texts.push_back(caps[i]);
    real2.push_back(s.split.clips[i]);
    const auto& real = s.raw[i];  // [T, 2, F]
    // The pair: the real actor's codes with the generated reactor's, decoded together.
    auto rc = res[k].codes;
    const int64_t steps = std::min<int64_t>(rc.defined() ? rc.size(0) : 0, c.codes.size(0));
    torch::Tensor pair;
    if (steps > 0) {
      auto codes = c.codes.narrow(0, 0, steps).narrow(2, 0, L).clone();
      codes.select(1, reactor).copy_(rc.narrow(0, 0, steps).select(1, 0).narrow(1, 0, L));
      pair = s.model.decode_motion(codes).cpu();
    }
    // Control: the actor's real joints reflected across the plane bisecting the two roots at frame 0.
    auto rj = motion::features_to_joints(real);  // [T, 2, 22, 3]
    auto a0 = rj[0][actor][0], b0 = rj[0][reactor][0];
    auto n = (b0 - a0).clone();
    n[1] = 0;
    n = n / n.norm().clamp_min(1e-6);
    auto mid = (a0 + b0) / 2;
    auto aj = rj.select(1, actor);
    auto mirrored = aj - 2 * ((aj - mid) * n).sum(-1, true) * n;
    const int64_t T = rj.size(0);
    err_ctrl += mpjpe_mm(mirrored, rj.select(1, reactor)) * T;
    if (pair.defined()) {
      const int64_t t = std::min<int64_t>(pair.size(0), real.size(0));
      auto pj = motion::features_to_joints(pair.narrow(0, 0, t));
      err += mpjpe_mm(pj.select(1, reactor), rj.narrow(0, 0, t).select(1, reactor)) * t;
      frames += t;
      gen.push_back(s.ev.normalizer.normalize(pair));
    } else {
      gen.push_back(normalized_or_mean(s.ev, torch::Tensor(), 2));
    }
  }
  auto gt_motion = embed_clips(s.ev.model, real2);
  auto te = embed_ids(s.ev.model, s.ev.tokenize(texts), s.ev.eot);
  EmbeddingSet gt{te, gt_motion, gt_motion, torch::Tensor()};
  j["rows"]["gt"] = protocol_row(p, score_replications(gt, p, R, o.seed));
  EmbeddingSet ms{te, embed_clips(s.ev.model, gen), gt_motion, torch::Tensor()};
  auto row = protocol_row(p, score_replications(ms, p, R, o.seed));
  row["mpjpe_mm"] = {{"mean", frames ? err / frames : 0.0}, {"ci95", 0.0}};
  j["rows"]["model"] = row;
  int64_t all_frames = 0;
  for (const auto& r : s.raw) all_frames += r.size(0);
  j["rows"]["mirrored_actor"] = {{"mpjpe_mm", {{"mean", err_ctrl / (2.0 * all_frames)}, {"ci95", 0.0}}}};
  j["clips"] = N;
  j["generation_seconds"] = gen_s;
  j["mpjpe_definition"] = "reactor joints (22, metres -> mm) in the pair's frame, frames both motions have";
  write_outputs(o, s, "reaction", j);
  return j;
}

}  // namespace vimo::eval

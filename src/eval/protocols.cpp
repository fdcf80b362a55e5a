// Protocol building blocks: captioned splits, replicated caption draws, the ground-truth row and
// its shuffled-caption control, the protocol JSON and its markdown table, the on-disk batch cache.
#include "vimo/eval/protocols.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/progress.h"
#include "vimo/core/rng.h"

namespace vimo::eval {
namespace {
constexpr uint64_t kCaptionDraw = 0x43415044524157ull;  // "CAPDRAW"
constexpr uint64_t kControlDraw = 0x4354524c445257ull;  // "CTRLDRW"
}  // namespace

CaptionedSplit load_captioned_split(const data::PackedDataset& ds, const LoadedEvaluator& ev) {
  VIMO_CHECK(ev.normalizer.defined(), "evaluator '" + ev.path + "' has no feature statistics: put the packed "
                                      "dataset's stats.safetensors beside its weights");
  const int64_t F = ev.model->options().motion_features;
  CaptionedSplit s;
  const auto& ix = ds.index();
  int64_t skipped = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    std::vector<std::string> caps;
    for (const auto& c : ix.captions[i])
      if (!c.empty()) caps.push_back(c);
    if (caps.empty()) {
      ++skipped;
      continue;
    }
    auto m = ds.clip(i).motion;
    VIMO_CHECK(m.size(2) == F, "'" + ds.path() + "' holds " + std::to_string(m.size(2)) + "-d features but the "
                               "evaluator '" + ev.path + "' was trained on " + std::to_string(F) + "-d features");
    s.ids.push_back(ix.ids[i]);
    s.clips.push_back(ev.normalizer.normalize(m));
    s.captions.push_back(std::move(caps));
  }
  if (skipped) log::warn("eval: ", skipped, " clips of '", ds.path(), "' have no caption and are left out");
  VIMO_CHECK(s.clips.size() >= 2, "'" + ds.path() + "' has fewer than 2 captioned clips to evaluate");
  return s;
}

torch::Tensor replicated_caption_embeddings(LoadedEvaluator& ev, const CaptionedSplit& s, int64_t replications,
                                            int64_t seed) {
  std::vector<std::string> flat;
  std::vector<int64_t> offset;
  for (const auto& cs : s.captions) {
    offset.push_back(static_cast<int64_t>(flat.size()));
    flat.insert(flat.end(), cs.begin(), cs.end());
  }
  auto emb = embed_ids(ev.model, ev.tokenize(flat), ev.eot);  // [Ncap, D]
  const int64_t N = static_cast<int64_t>(s.captions.size());
  auto idx = torch::empty({replications, N}, torch::kLong);
  auto a = idx.accessor<int64_t, 2>();
  for (int64_t r = 0; r < replications; ++r)
    for (int64_t i = 0; i < N; ++i) {
      std::mt19937_64 rng(core::derive_seed(seed, kCaptionDraw, r * N + i));
      a[r][i] = offset[i] + static_cast<int64_t>(core::below(rng, s.captions[i].size()));
    }
  return emb.index_select(0, idx.flatten()).view({replications, N, emb.size(1)});
}

MetricProtocol fit_protocol(const MetricProtocol& p, int64_t n, int64_t mm_k) {
  auto q = p;
  const int64_t kept = p.batch_size > 0 ? (n / p.batch_size) * p.batch_size : n;
  if (kept > 1 && q.diversity_times >= kept) {  // InterGen asserts pairs > draws
    log::warn("eval: ", kept, " pairs scored, not more than the protocol's ", q.diversity_times,
              " Diversity draws; drawing ", kept - 1, " (not comparable with published Diversity)");
    q.diversity_times = kept - 1;
  }
  if (mm_k > 0 && q.mm_times > mm_k) {
    log::warn("eval: ", mm_k, " generations per MultiModality text, fewer than the protocol's ", q.mm_times,
              " draws; drawing ", mm_k);
    q.mm_times = mm_k;
  }
  return q;
}

nlohmann::ordered_json protocol_json(const std::string& task, const std::string& split, const MetricProtocol& p,
                                     int64_t replications) {
  return {{"task", task},
          {"split", split},
          {"protocol", p.name},
          {"replications", replications},
          {"rows", nlohmann::ordered_json::object()}};
}

nlohmann::ordered_json protocol_row(const MetricProtocol& p, const std::vector<ReplicationScores>& runs) {
  return replication_report(p, runs)["summary"];
}

nlohmann::ordered_json evaluate_ground_truth(LoadedEvaluator& ev, const CaptionedSplit& s, const std::string& split,
                                             const MetricProtocol& p_in, int64_t replications, int64_t seed) {
  auto motion = embed_clips(ev.model, s.clips);
  auto text = replicated_caption_embeddings(ev, s, replications, seed);
  const int64_t N = motion.size(0);
  const auto p = fit_protocol(p_in, N);
  EmbeddingSet gt{text, motion, motion, torch::Tensor()};
  auto j = protocol_json("ground_truth", split, p, replications);
  j["rows"]["gt"] = protocol_row(p, score_replications(gt, p, replications, seed));
  // Control: each replication's captions in a random order over the clips.
  auto shuffled = torch::empty_like(text);
  for (int64_t r = 0; r < replications; ++r) {
    std::mt19937_64 rng(core::derive_seed(seed, kControlDraw, r));
    shuffled[r].copy_(text[r].index_select(0, permutation(rng, N)));
  }
  EmbeddingSet ctrl{shuffled, motion, motion, torch::Tensor()};
  j["rows"]["shuffled"] = protocol_row(p, score_replications(ctrl, p, replications, seed));
  j["clips"] = N;
  return j;
}

std::string protocol_markdown(const nlohmann::ordered_json& j) {
  std::vector<std::string> metrics;
  for (const auto& [row, m] : j.at("rows").items())
    for (const auto& [k, v] : m.items())
      if (std::find(metrics.begin(), metrics.end(), k) == metrics.end()) metrics.push_back(k);
  std::ostringstream o;
  o << "| " << j.value("task", std::string()) << " (" << j.value("split", std::string()) << ") |";
  for (const auto& k : metrics) o << " " << k << " |";
  o << "\n|---|";
  for (size_t i = 0; i < metrics.size(); ++i) o << "---|";
  o << "\n";
  char buf[64];
  for (const auto& [row, m] : j.at("rows").items()) {
    o << "| " << row << " |";
    for (const auto& k : metrics) {
      if (m.contains(k)) {
        std::snprintf(buf, sizeof buf, " %.3f ± %.3f |", m[k].value("mean", 0.0), m[k].value("ci95", 0.0));
        o << buf;
      } else {
        o << " - |";
      }
    }
    o << "\n";
  }
  return o.str();
}

std::string sample_key(const std::string& run, const std::string& what, const vim::GenerateSettings& g, size_t n,
                       int64_t rows) {
  namespace fs = std::filesystem;
  const std::string ckpt = vim::VimModel::run_checkpoint(run);
  const fs::path w = fs::path(ckpt) / "model.safetensors";
  const auto stamp = fs::exists(w) ? fs::last_write_time(w).time_since_epoch().count() : 0;
  nlohmann::json j = {{"checkpoint", fs::relative(ckpt, run).string()}, {"stamp", stamp}, {"what", what}, {"n", n}, {"greedy", g.greedy},
                      {"temperature", g.temperature}, {"top_k", g.top_k}, {"top_p", g.top_p}, {"seed", g.seed},
                      {"max_new", g.max_new}, {"max_motion_steps", g.max_motion_steps},
                      {"repetition_penalty", g.repetition_penalty}, {"guidance", g.guidance}, {"rows", rows}};
  return j.dump();
}

void cached_batches(const std::filesystem::path& dir, const std::string& key, int64_t n, int64_t rows,
                    const std::string& label, const std::function<nlohmann::json(int64_t, int64_t)>& make,
                    const std::function<void(int64_t, const nlohmann::json&)>& use) {
  namespace fs = std::filesystem;
  VIMO_CHECK(rows > 0, "generation batch must hold at least one row");
  const fs::path key_file = dir / "key.json";
  if (fs::exists(key_file) && core::read_file(key_file.string()) != key) {
    log::info("eval: samples in '", dir.string(), "' were made by another checkpoint or setting; regenerating");
    fs::remove_all(dir);
  }
  fs::create_directories(dir);
  if (!fs::exists(key_file)) core::write_file_atomic(key_file.string(), key);
  core::Progress prog(label, n);
  int64_t reused = 0;
  for (int64_t b = 0, i = 0; i < n; ++b, i += rows) {
    const int64_t e = std::min(n, i + rows);
    char name[32];
    std::snprintf(name, sizeof name, "batch_%05lld.json", static_cast<long long>(b));
    const fs::path f = dir / name;
    nlohmann::json j;
    if (fs::exists(f)) {
      try {
        j = nlohmann::json::parse(core::read_file(f.string()));
      } catch (const nlohmann::json::exception&) {
        j = nullptr;  // a damaged batch is made again
      }
    }
    if (j.is_array() && static_cast<int64_t>(j.size()) == e - i) {
      reused += e - i;
    } else {
      j = make(i, e);
      VIMO_CHECK(j.is_array() && static_cast<int64_t>(j.size()) == e - i, "generation returned a wrong number of items");
      core::write_file_atomic(f.string(), j.dump() + "\n");
    }
    for (int64_t k = i; k < e; ++k) use(k, j[static_cast<size_t>(k - i)]);
    prog.add(e - i);
  }
  prog.finish();
  if (reused) log::info("eval: ", reused, " of ", n, " samples reused from '", dir.string(), "'");
}

void write_protocol_report(const std::string& json_path, const nlohmann::ordered_json& j) {
  core::write_file_atomic(json_path, j.dump(2) + "\n");
  std::filesystem::path md(json_path);
  md.replace_extension(".md");
  core::write_file_atomic(md.string(), protocol_markdown(j));
  log::info("eval: wrote ", json_path, " and ", md.string());
}

}  // namespace vimo::eval

// Replication inputs (shared or per-replication embeddings) and the JSON report over replications.
#include "vimo/core/error.h"
#include "vimo/eval/metric_protocol.h"

namespace vimo::eval {
namespace {

using ordered_json = nlohmann::ordered_json;

torch::Tensor slice(const torch::Tensor& t, int64_t base_dim, int64_t r, int64_t R, const char* name) {
  if (!t.defined() || t.dim() == base_dim) return t;
  VIMO_CHECK(t.dim() == base_dim + 1 && t.size(0) == R,
             std::string("embeddings: ") + name + " " + c10::str(t.sizes()) + " must be " + std::to_string(base_dim) +
                 "-d (shared by all replications) or have " + std::to_string(R) + " replications in front");
  return t[r];
}

void add(std::map<std::string, std::vector<double>>& m, const std::string& k, const std::optional<double>& v) {
  if (v) m[k].push_back(*v);
}

}  // namespace

EmbeddingSet replication_slice(const EmbeddingSet& all, int64_t r, int64_t replications) {
  VIMO_CHECK(replications >= 1 && r >= 0 && r < replications, "replication_slice: replication out of range");
  return {slice(all.text, 2, r, replications, "text"), slice(all.motion, 2, r, replications, "motion"),
          slice(all.gt_motion, 2, r, replications, "gt"), slice(all.mm_motion, 3, r, replications, "mm")};
}

std::vector<ReplicationScores> score_replications(const EmbeddingSet& all, const MetricProtocol& p,
                                                  int64_t replications, int64_t seed,
                                                  std::vector<ReplicationDraws>* draws) {
  VIMO_CHECK(replications >= 1, "embeddings: replications must be at least 1");
  std::vector<ReplicationScores> out;
  for (int64_t r = 0; r < replications; ++r) {
    const EmbeddingSet e = replication_slice(all, r, replications);
    VIMO_CHECK(e.text.defined() && e.text.dim() == 2, "embeddings: text embeddings must be [N, D] or [R, N, D]");
    const int64_t n_gt = e.gt_motion.defined() ? e.gt_motion.size(0) : 0;
    const int64_t k = e.mm_motion.defined() && e.mm_motion.dim() == 3 ? e.mm_motion.size(1) : 0;
    auto d = draw_replication(e.text.size(0), n_gt, k, p, seed, r);
    out.push_back(score_replication(e, p, d));
    if (draws) draws->push_back(std::move(d));
  }
  return out;
}

ordered_json replication_report(const MetricProtocol& p, const std::vector<ReplicationScores>& runs) {
  ordered_json j;
  j["protocol"] = {{"name", p.name},
                   {"batch_size", p.batch_size},
                   {"fid_scale", p.fid_scale},
                   {"diversity_scale", p.diversity_scale},
                   {"diversity_divide", p.diversity_divide},
                   {"mm_scale", p.mm_scale},
                   {"mm_divide", p.mm_divide},
                   {"diversity_times", p.diversity_times},
                   {"mm_times", p.mm_times}};
  j["replications"] = runs.size();
  std::map<std::string, std::vector<double>> values;
  ordered_json per = ordered_json::array();
  for (const auto& s : runs) {
    ordered_json r = {{"pairs", s.pairs},
                      {"r_precision_top1", s.r_precision[0]},
                      {"r_precision_top2", s.r_precision[1]},
                      {"r_precision_top3", s.r_precision[2]},
                      {"mm_dist", s.mm_dist},
                      {"diversity", s.diversity}};
    if (s.fid) r["fid"] = *s.fid;
    if (s.multimodality) r["multimodality"] = *s.multimodality;
    for (const auto& [k, v] : r.items())
      if (k != "pairs") add(values, k, v.get<double>());
    per.push_back(r);
  }
  j["per_replication"] = per;
  ordered_json summary;
  for (const char* k :
       {"r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity", "multimodality"}) {
    if (!values.count(k)) continue;
    const auto m = mean_interval(values[k]);
    summary[k] = {{"mean", m.mean}, {"ci95", m.ci95}};
  }
  j["summary"] = summary;
  return j;
}

}  // namespace vimo::eval

// `vimo eval fid --a A.npy --b B.npy`: FID of two feature sets [N, D]; `vimo eval embeddings`: the
// metric part of a text-to-motion evaluation (R-precision, MM-Dist, FID, Diversity, MultiModality)
// over replications, on given evaluator embeddings.
#include <cstdio>
#include <iostream>

#include "command.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"
#include "vimo/eval/fid.h"
#include "vimo/eval/metric_protocol.h"

namespace vimo::cli {
namespace {

struct FidArgs {
  std::string a, b, out;
  double scale = 1.0;
};

struct EmbeddingArgs {
  std::string text, motion, gt, mm, out, draws, protocol = "intergen";
  int64_t replications = 20, seed = 0, batch_size = 0, diversity_times = -1, mm_times = -1;
};

torch::Tensor load_optional(const std::string& path) { return path.empty() ? torch::Tensor() : core::load_npy(path); }

void write_json(const std::string& out, const nlohmann::ordered_json& j) {
  const std::string text = j.dump(2) + "\n";
  if (!out.empty()) core::write_file_atomic(out, text);
  std::cout << text;
}

Registrar reg(71, [](CLI::App& app) {
  auto* g = group(app, "eval", "evaluation metrics and protocols");
  auto f = std::make_shared<FidArgs>();
  auto* c = g->add_subcommand("fid", "Fréchet distance between two feature sets (.npy, [N, D]), in float64");
  c->add_option("--a", f->a, "first feature set [Na, D]")->required()->check(CLI::ExistingFile);
  c->add_option("--b", f->b, "second feature set [Nb, D]")->required()->check(CLI::ExistingFile);
  c->add_option("--scale", f->scale, "multiply features first (InterGen's InterHuman protocol: 6)");
  c->add_option("--out", f->out, "also write the JSON here");
  c->callback([f] {
    const auto a = core::load_npy(f->a), b = core::load_npy(f->b);
    const double v = eval::fid(a, b, f->scale);
    nlohmann::ordered_json j = {{"fid", v},         {"a", f->a},        {"b", f->b},        {"n_a", a.size(0)},
                                {"n_b", b.size(0)}, {"dim", a.size(1)}, {"scale", f->scale}};
    write_json(f->out, j);
  });

  auto e = std::make_shared<EmbeddingArgs>();
  auto* m = g->add_subcommand("embeddings", "R-precision, MM-Dist, FID, Diversity, MultiModality over replications");
  m->add_option("--text", e->text, "text embeddings [N, D] or [R, N, D] (.npy)")->required()->check(CLI::ExistingFile);
  m->add_option("--motion", e->motion, "generated motion embeddings, row i from text i")
      ->required()
      ->check(CLI::ExistingFile);
  m->add_option("--gt", e->gt, "real motion embeddings [N_gt, D] (or [R, ...]) for FID")->check(CLI::ExistingFile);
  m->add_option("--mm", e->mm, "MultiModality embeddings [T, K, D] (or [R, ...])")->check(CLI::ExistingFile);
  m->add_option("--protocol", e->protocol, "intergen | intermask | intermask-interx (docs/eval.md)");
  m->add_option("--replications", e->replications, "replications (InterGen: 20)");
  m->add_option("--seed", e->seed, "seed of the draws");
  m->add_option("--batch-size", e->batch_size, "override the protocol's R-precision pool");
  m->add_option("--diversity-times", e->diversity_times, "override the protocol's Diversity draw size (300)");
  m->add_option("--mm-times", e->mm_times, "override the protocol's MultiModality draw size (10)");
  m->add_option("--save-draws", e->draws, "write the draws used to this .safetensors (r<i>.order, ...)");
  m->add_option("--out", e->out, "also write the JSON here");
  m->callback([e] {
    auto p = eval::metric_protocol(e->protocol);
    if (e->batch_size > 0) p.batch_size = e->batch_size;
    if (e->diversity_times >= 0) p.diversity_times = e->diversity_times;
    if (e->mm_times >= 0) p.mm_times = e->mm_times;
    const eval::EmbeddingSet all{core::load_npy(e->text), core::load_npy(e->motion), load_optional(e->gt),
                                 load_optional(e->mm)};
    std::vector<eval::ReplicationDraws> draws;
    const auto runs = eval::score_replications(all, p, e->replications, e->seed, &draws);
    if (!e->draws.empty()) {
      core::NamedTensors t;
      for (size_t r = 0; r < draws.size(); ++r) {
        const std::string k = "r" + std::to_string(r) + ".";
        for (const auto& [n, v] : {std::pair{"order", draws[r].order},
                                   {"gt_order", draws[r].gt_order},
                                   {"div_first", draws[r].div_first},
                                   {"div_second", draws[r].div_second},
                                   {"mm_first", draws[r].mm_first},
                                   {"mm_second", draws[r].mm_second}})
          if (v.numel() > 0) t.emplace_back(k + n, v);
      }
      core::save_safetensors(e->draws, t);
    }
    auto j = eval::replication_report(p, runs);
    j["seed"] = e->seed;
    write_json(e->out, j);
  });
});

}  // namespace
}  // namespace vimo::cli

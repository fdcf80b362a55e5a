// `vimo eval t2m|m2t|reaction --run DIR --evaluator EV`: the paper's protocols over an LM run, and
// `vimo eval tables --runs DIR... --out DIR`: their results side by side; `vimo eval group`: synthetic
// group scenes composed by a two-person run.
#include <iostream>
#include <optional>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/eval/group_protocol.h"
#include "vimo/eval/protocols.h"
#include "vimo/eval/run_protocols.h"

namespace vimo::cli {
namespace {

struct ProtocolArgs {
  eval::RunProtocolOptions o;
  std::optional<double> temperature, top_p, guidance;
  std::optional<int64_t> top_k, seed;
  bool greedy = false, sample = false;
  int threads = 0;
};

struct TableArgs {
  std::vector<std::string> runs;
  std::string out, split = "test";
};

void add_protocol(CLI::App* g, const std::string& name, const std::string& help,
                  nlohmann::ordered_json (*fn)(const eval::RunProtocolOptions&)) {
  auto a = std::make_shared<ProtocolArgs>();
  auto* c = g->add_subcommand(name, help);
  c->add_option("--run", a->o.run, "LM run directory (stage 2 or 3)")->required();
  c->add_option("--evaluator", a->o.evaluator, "evaluator run, checkpoint or converted .safetensors")->required();
  c->add_option("--clip-vocab", a->o.clip_vocab, "CLIP's bpe_simple_vocab_16e6.txt.gz for a clip_bpe evaluator");
  c->add_option("--tokens", a->o.tokens, "token-cache directory (default: the run's data.tokens)");
  c->add_option("--packed", a->o.packed, "packed dataset of the real motions (default: the evaluator's)");
  c->add_option("--split", a->o.split, "train | val | test");
  c->add_option("--protocol", a->o.protocol, "intergen | intermask | intermask-interx (docs/eval.md)");
  c->add_option("--batch-size", a->o.batch_size, "override the protocol's R-precision pool")->check(CLI::Range(0, 100000));
  c->add_option("--replications", a->o.replications, "replications R (InterGen: 20)")->check(CLI::Range(1, 1000));
  c->add_option("--limit", a->o.limit, "first N clips of the split (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--rows", a->o.rows, "generation batch")->check(CLI::Range(1, 4096));
  c->add_option("--seed", a->o.seed, "seed of the caption draws, batches and controls");
  c->add_option("--out", a->o.out, "JSON path (default <run>/eval/<task>_<split>.json; markdown beside it)");
  const bool motion_out = name == "t2m";
  c->add_flag("--greedy", a->greedy,
              motion_out ? "greedy decoding (default: sampling, whatever the run's generate section says)"
                         : "greedy decoding (default: the run's generate section)");
  c->add_flag("--sample", a->sample,
              motion_out ? "sampling (the default of t2m)" : "sampling even when the run's generate section says greedy");
  c->add_option("--temperature", a->temperature, "sampling temperature");
  c->add_option("--top-k", a->top_k, "top-k sampling (0 = off)");
  c->add_option("--top-p", a->top_p, "nucleus sampling");
  c->add_option("--guidance", a->guidance, "classifier-free guidance of t2m (default: the run's generate.guidance)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--sample-seed", a->seed, "seed of generation pass 0 (pass k uses seed + k)");
  c->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  if (name == "t2m") {
    c->add_option("--generations", a->o.generations, "distinct generation passes (replication r uses pass r mod G)")
        ->check(CLI::Range(1, 1000));
    c->add_option("--mm-texts", a->o.mm_texts, "MultiModality: texts (InterGen: 100; 0 = not computed)")
        ->check(CLI::NonNegativeNumber);
    c->add_option("--mm-repeats", a->o.mm_repeats, "MultiModality: generations per text (InterGen: 30)")
        ->check(CLI::Range(2, 1000));
  }
  c->callback([a, fn, motion_out] {
    core::apply_threads(a->threads);
    auto g = vim::GenerateSettings::from(vim::run_generate_section(a->o.run));
    VIMO_CHECK(!(a->greedy && a->sample), "--greedy and --sample exclude each other");
    if (a->greedy) g.greedy = true;
    // t2m samples unless told otherwise: greedy decoding of motion settles into a held pose
    // (docs/eval.md), and Diversity and MultiModality need distinct samples.
    if (a->sample || (motion_out && !a->greedy)) g.greedy = false;
    if (a->temperature) g.temperature = *a->temperature;
    if (a->top_k) g.top_k = *a->top_k;
    if (a->top_p) g.top_p = *a->top_p;
    if (a->guidance) g.guidance = *a->guidance;
    if (a->seed) g.seed = static_cast<uint64_t>(*a->seed);
    a->o.sampling = g;
    auto j = fn(a->o);
    std::cout << eval::protocol_markdown(j);
  });
}

Registrar reg(73, [](CLI::App& app) {
  auto* g = group(app, "eval", "evaluation metrics and protocols");
  add_protocol(g, "t2m", "text -> motion: FID, R-precision, MM-Dist, Diversity, MultiModality (GT row and a control)",
               &eval::evaluate_t2m);
  add_protocol(g, "m2t", "motion -> text: R-precision and MM-Dist of generated captions, BLEU, ROUGE-L, CIDEr-D, METEOR",
               &eval::evaluate_m2t);
  add_protocol(g, "reaction", "actor -> reactor (both directions): reactor MPJPE, FID, R-precision, and a control",
               &eval::evaluate_reaction);
  {
    auto a = std::make_shared<eval::GroupProtocolOptions>();
    auto sflags = std::make_shared<ProtocolArgs>();
    auto* c = g->add_subcommand("group", "groups of N >= 3 composed by a pair run on synthetic group scenes: per-pair "
                                         "R-precision/FID, penetration, foot skating, contact timing (docs/groups.md)");
    c->add_option("--run", a->run, "LM run directory (t2m and a2b trained)")->required();
    c->add_option("--evaluator", a->evaluator, "the pair evaluator (run, checkpoint or converted .safetensors)")->required();
    c->add_option("--clip-vocab", a->clip_vocab, "CLIP's merges file for a clip_bpe evaluator");
    c->add_option("--persons", a->persons, "people per scene (3..--max-persons)");
    c->add_option("--max-persons", a->group.max_persons, "the largest group accepted");
    c->add_option("--scenes", a->scenes, "synthetic scenes (the types alternate)")->check(CLI::Range(2, 100000));
    c->add_option("--scene-seed", a->scene_seed, "seed of the scenes (the FID reference set uses seed + 1)");
    c->add_option("--tries", a->group.tries, "samples per person, the least overlapping placement kept")->check(CLI::Range(1, 64));
    c->add_flag("!--no-foot-cleanup", a->group.foot_cleanup, "score the scenes as decoded (default: planted feet held, "
                "both skating figures reported)");
    c->add_option("--protocol", a->protocol, "intergen | intermask (docs/eval.md)");
    c->add_option("--batch-size", a->batch_size, "R-precision pool of pairs (0 = min(32, pairs))")->check(CLI::NonNegativeNumber);
    c->add_option("--replications", a->replications, "replications R")->check(CLI::Range(1, 1000));
    c->add_option("--seed", a->seed, "seed of the caption draws and batches");
    c->add_option("--out", a->out, "JSON path (default <run>/eval/group<N>_synthetic.json; markdown beside it)");
    c->add_flag("--greedy", sflags->greedy, "greedy decoding (default: sampling)");
    c->add_option("--temperature", sflags->temperature, "sampling temperature");
    c->add_option("--top-k", sflags->top_k, "top-k sampling (0 = off)");
    c->add_option("--top-p", sflags->top_p, "nucleus sampling");
    c->add_option("--sample-seed", sflags->seed, "seed of scene 0's sampling (scene i uses seed + i)");
    c->add_option("--threads", sflags->threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
    c->callback([a, sflags] {
      core::apply_threads(sflags->threads);
      auto s = vim::GenerateSettings::from(vim::run_generate_section(a->run));
      s.greedy = sflags->greedy;
      if (sflags->temperature) s.temperature = *sflags->temperature;
      if (sflags->top_k) s.top_k = *sflags->top_k;
      if (sflags->top_p) s.top_p = *sflags->top_p;
      if (sflags->seed) s.seed = static_cast<uint64_t>(*sflags->seed);
      a->sampling = s;
      std::cout << eval::protocol_markdown(eval::evaluate_group(*a));
    });
  }
  auto t = std::make_shared<TableArgs>();
  auto* c = g->add_subcommand("tables", "the protocol results of runs side by side (markdown, JSON, LaTeX)");
  c->add_option("--runs", t->runs, "LM run directories (evaluated with `vimo eval t2m|m2t|reaction`)")->required();
  c->add_option("--out", t->out, "output directory")->required();
  c->add_option("--split", t->split, "the split the runs were evaluated on");
  c->callback([t] { std::cout << eval::write_tables(t->runs, t->split, t->out); });
});

}  // namespace
}  // namespace vimo::cli

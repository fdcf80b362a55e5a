// The sampling flags of `vimo generate` and `vimo chat`, resolved over the run's generate section:
// a flag not given keeps the run's value; --greedy / --sample override its generate.greedy.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>

#include "vimo/vim/model.h"

namespace vimo::cli {

struct SamplingFlags {
  bool greedy = false, sample = false;
  std::optional<double> temperature, top_p, repetition_penalty, guidance;
  std::optional<int64_t> top_k, seed, max_steps;
  int64_t min_steps = 0;

  void add(CLI::App* c) {
    c->add_flag("--greedy", greedy, "argmax decoding (default: the run's generate.greedy)");
    c->add_flag("--sample", sample, "sampling even when the run's generate.greedy is true")->excludes("--greedy");
    c->add_option("--temperature", temperature, "sampling temperature (default: the run's generate.temperature)");
    c->add_option("--top-k", top_k, "top-k (default: the run's generate.top_k)");
    c->add_option("--top-p", top_p, "nucleus mass (default: the run's generate.top_p)");
    c->add_option("--repetition-penalty", repetition_penalty,
                  "penalty on tokens already present, text responses only (default: the run's generate.repetition_penalty)");
    c->add_option("--guidance", guidance,
                  "classifier-free guidance scale of text -> motion, 1 = off (default: the run's generate.guidance)");
    c->add_option("--seed", seed, "sampling seed (default: the run's generate.seed)");
    c->add_option("--max-steps", max_steps, "most motion token steps per motion (x4 frames); default 75 (10 s)");
    c->add_option("--min-steps", min_steps, "fewest motion token steps before a motion may end (default 0; = --max-steps: a fixed length)");
  }
  vim::GenerateSettings resolve(const lm::LmGenerateSection& d) const {
    auto g = vim::GenerateSettings::from(d);
    g.greedy = greedy || (d.greedy && !sample);
    g.temperature = temperature.value_or(d.temperature);
    g.top_k = top_k.value_or(d.top_k);
    g.top_p = top_p.value_or(d.top_p);
    g.seed = static_cast<uint64_t>(seed.value_or(d.seed));
    g.repetition_penalty = repetition_penalty.value_or(d.repetition_penalty);
    g.guidance = guidance.value_or(d.guidance);
    g.max_motion_steps = max_steps.value_or(75);
    g.min_motion_steps = min_steps;
    return g;
  }
};

}  // namespace vimo::cli

// `vimo lm forward|generate|init`: logits for token ids, text-free generation, and a model
// directory built from a YAML config (schema "lm").
#include <iostream>

#include <filesystem>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/core/tensor_io.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/tools.h"
#include "vimo/vim/model.h"

namespace vimo::cli {
namespace {

struct Common {
  std::string model, adapter, dtype = "auto", device = "cpu";
  std::vector<std::string> tokens;
  int threads = 0;
};

void add_common(CLI::App* c, Common& o) {
  c->add_option("--model", o.model, "HF Llama directory (config.json + safetensors)")->required();
  c->add_option("--tokens", o.tokens, "token ids, e.g. \"1 2 3\"; repeat for a padded batch")->required();
  c->add_option("--adapter", o.adapter, "PEFT LoRA adapter directory, merged into the weights");
  c->add_option("--dtype", o.dtype, "auto (config.json) | float32 | bfloat16 | float16");
  c->add_option("--device", o.device, "cpu | cuda | cuda:N | auto");
  c->add_option("--threads", o.threads, "CPU threads; 0 = all cores");
}

std::vector<std::vector<int64_t>> parse_all(const std::vector<std::string>& t) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& s : t) out.push_back(lm::parse_tokens(s));
  return out;
}

Registrar reg(60, [](CLI::App& app) {
  auto* g = group(app, "lm", "the Llama-family language model: logits, generation, model directories");

  auto fo = std::make_shared<Common>();
  auto out = std::make_shared<std::string>();
  auto padding = std::make_shared<std::string>("right");
  auto run = std::make_shared<std::string>();
  auto* f = g->add_subcommand("forward", "write logits for token ids: [N, vocab] float32, or [B, Tmax, vocab] for several");
  add_common(f, *fo);
  f->get_option("--model")->required(false);
  f->add_option("--run", *run, "an LM run directory instead of --model: its trained model, unmerged")->excludes("--model");
  f->add_option("--out", *out, "output .npy")->required();
  f->add_option("--padding", *padding, "batch padding side (the model sees a padded batch with a mask)")
      ->check(CLI::IsMember({"left", "right"}));
  f->callback([fo, out, padding, run] {
    core::apply_threads(fo->threads);
    VIMO_CHECK(!fo->model.empty() || !run->empty(), "give --model DIR or --run DIR");
    auto m = run->empty() ? lm::load_for_inference(fo->model, fo->adapter, fo->dtype, fo->device)
                          : vim::VimModel::load_run(*run, core::resolve_device(fo->device)).lm();
    auto seqs = parse_all(fo->tokens);
    auto logits = lm::forward_padded(m, seqs, *padding);
    if (seqs.size() == 1) logits = logits[0];
    core::save_npy(*out, logits);
    vimo::log::info("wrote logits ", logits.sizes(), " to ", *out);
  });

  auto go = std::make_shared<Common>();
  auto gen = std::make_shared<lm::GenerateOptions>();
  auto stops = std::make_shared<std::vector<int64_t>>();
  auto negative = std::make_shared<std::vector<std::string>>();
  auto flags = std::make_shared<std::pair<bool, bool>>(false, false);  // no-stop, no-cache
  auto* c = g->add_subcommand("generate", "continue token ids; prints each sequence's new ids on one line");
  add_common(c, *go);
  c->add_option("--max-new", gen->max_new_tokens, "most new tokens per sequence")->check(CLI::NonNegativeNumber);
  c->add_flag("--greedy", gen->greedy, "argmax decoding");
  c->add_option("--temperature", gen->temperature, "sampling temperature")->check(CLI::PositiveNumber);
  c->add_option("--top-k", gen->top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  c->add_option("--top-p", gen->top_p, "nucleus mass (1 = off)")->check(CLI::Range(0.0, 1.0));
  c->add_option("--repetition-penalty", gen->repetition_penalty, "penalty on seen tokens (1 = off)")->check(CLI::PositiveNumber);
  c->add_option("--stop", *stops, "stop token id (repeatable); default: eos_token_id of config.json");
  c->add_flag("--no-stop", flags->first, "ignore eos: always generate --max-new tokens");
  c->add_flag("--no-cache", flags->second, "recompute the full prefix each step (slow; for checks)");
  c->add_option("--seed", gen->seed, "sampling seed");
  c->add_option("--guidance", gen->guidance,
                "classifier-free guidance scale (1 = off): logits u + g·(c − u) with u from --negative")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--negative", *negative,
                "unconditional prompt ids for --guidance: once for every sequence, or once per --tokens");
  c->callback([go, gen, stops, flags, negative] {
    core::apply_threads(go->threads);
    // A depth-head run's merged LM writes one level-0 id per motion slot: its codes need the head.
    VIMO_CHECK(!std::filesystem::exists(std::filesystem::path(go->model) / "depth_head.safetensors"),
               "'" + go->model + "' is the merged LM of a depth-head run (it has depth_head.safetensors): plain token "
               "generation cannot write its motion; generate with `vimo generate --run RUN`");
    auto m = lm::load_for_inference(go->model, go->adapter, go->dtype, go->device);
    lm::GenerateOptions o = *gen;
    o.stop_tokens = stops->empty() ? m->config().eos_token_id : *stops;
    if (flags->first) o.stop_tokens.clear();
    o.use_cache = !flags->second;
    if (m->config().pad_token_id) o.pad_token = *m->config().pad_token_id;
    const auto prompts = parse_all(go->tokens);
    VIMO_CHECK(negative->empty() == (o.guidance == 1.0),
               "--guidance and --negative go together (guidance 1 is off and takes no --negative)");
    if (!negative->empty()) {
      VIMO_CHECK(negative->size() == 1 || negative->size() == prompts.size(),
                 "--negative: give it once, or once per --tokens (" + std::to_string(prompts.size()) + ")");
      auto neg = parse_all(*negative);
      o.uncond_prompts = neg.size() == 1 ? std::vector<std::vector<int64_t>>(prompts.size(), neg[0]) : neg;
    }
    for (const auto& seq : lm::generate(m, prompts, o)) {
      for (size_t i = 0; i < seq.size(); ++i) std::cout << (i ? " " : "") << seq[i];
      std::cout << "\n";
    }
  });

  auto io = std::make_shared<ConfigOptions>();
  auto dir = std::make_shared<std::string>();
  auto* i = g->add_subcommand("init", "build the config's model (random or pretrained, resized, LoRA) into a directory");
  add_config_options(i, *io);
  i->add_option("--out", *dir, "output HF directory (adapter in <out>/adapter when LoRA is enabled)")->required();
  i->callback([io, dir] {
    lm::LmConfig cfg;
    if (!resolve(*io, cfg)) return;
    core::seed_all(cfg.run.seed);
    auto m = lm::build_from_config(cfg, core::resolve_device(cfg.run.device));
    lm::save_pretrained(m, *dir);
    if (cfg.lora.enabled) lm::save_adapter(m, *dir + "/adapter", cfg.model.scratch() ? "" : cfg.model.base);
    vimo::log::info("wrote ", m->config().num_parameters(), "-parameter model to ", *dir);
  });
});

}  // namespace
}  // namespace vimo::cli

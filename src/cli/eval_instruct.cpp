// `vimo eval instruct --run DIR --evaluator EV --conversations DIR --tokens DIR --packed DIR`: stage 3
// on held-out synthetic conversations (editing, reasoning, story).
#include <iostream>

#include "command.h"
#include "vimo/core/run.h"
#include "vimo/eval/instruct_protocol.h"
#include "vimo/eval/protocols.h"

namespace vimo::cli {
namespace {

Registrar reg(74, [](CLI::App& app) {
  auto* g = group(app, "eval", "evaluation metrics and protocols");
  auto o = std::make_shared<eval::InstructEvalOptions>();
  auto threads = std::make_shared<int>(0);
  auto* c = g->add_subcommand("instruct", "stage 3 on held-out conversations: editing (MPJPE, FID, caption preference), "
                                          "reasoning (accuracy, METEOR), story (valid next scene)");
  c->add_option("--run", o->run, "LM run directory (stage 3)")->required();
  c->add_option("--evaluator", o->evaluator, "evaluator run, checkpoint or converted .safetensors")->required();
  c->add_option("--clip-vocab", o->clip_vocab, "CLIP's merges file for a clip_bpe evaluator");
  c->add_option("--conversations", o->conversations, "directory of <split>.jsonl and meta.json")->required();
  c->add_option("--tokens", o->tokens, "token-cache directory of the conversation clips")->required();
  c->add_option("--packed", o->packed, "packed dataset of the conversation clips (the true motions)")->required();
  c->add_option("--split", o->split, "train | val | test");
  c->add_option("--limit", o->limit, "conversations per task (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--rows", o->rows, "generation batch")->check(CLI::Range(1, 4096));
  c->add_option("--out", o->out, "JSON path (default <run>/eval/instruct_<split>.json; markdown beside it)");
  c->add_option("--meteor", o->captions.meteor, "METEOR: auto | on | off");
  c->add_option("--threads", *threads, "CPU threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  c->callback([o, threads] {
    core::apply_threads(*threads);
    o->sampling = vim::GenerateSettings::from(vim::run_generate_section(o->run));
    o->sampling.greedy = true;
    std::cout << eval::protocol_markdown(eval::evaluate_instruct(*o));
  });
});

}  // namespace
}  // namespace vimo::cli

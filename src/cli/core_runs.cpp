// `vimo runs show DIR` and `vimo runs tb DIR`: inspect a run directory, rebuild its TensorBoard files.
#include <iostream>

#include "command.h"
#include "vimo/core/run_info.h"

namespace vimo::cli {
namespace {

Registrar reg(6, [](CLI::App& app) {
  auto* g = group(app, "runs", "inspect run directories");
  auto dir = std::make_shared<std::string>();
  auto* show = g->add_subcommand("show", "checkpoints, latest, best and the last metrics of a run");
  show->add_option("dir", *dir, "run directory")->required();
  show->callback([dir] { std::cout << core::summarize_run(*dir).to_text(); });
  auto* tb = g->add_subcommand("tb", "write TensorBoard event files under DIR/tb from DIR/metrics.jsonl");
  tb->add_option("dir", *dir, "run directory")->required();
  tb->callback([dir] { std::cout << core::export_tensorboard(*dir) << " scalars written to " << *dir << "/tb\n"; });
});

}  // namespace
}  // namespace vimo::cli

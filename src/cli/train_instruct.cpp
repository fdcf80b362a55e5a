// `vimo instruct --config FILE [key=value ...]`: stage 3, multi-turn instruction tuning of a stage-2 run.
#include <cstdio>

#include "command.h"
#include "vimo/core/schemas.h"
#include "vimo/train/recipes/instruct.h"

namespace vimo::cli {
namespace {

core::SchemaRegistrar<train::InstructConfig> schema("instruct");

Registrar reg(51, [](CLI::App& app) {
  auto opts = std::make_shared<ConfigOptions>();
  auto* c = app.add_subcommand("instruct", "stage 3: tune a stage-2 run on multi-turn conversations; rerun the same command to resume");
  add_config_options(c, *opts);
  c->callback([opts] {
    std::string yaml;
    auto cfg = train::resolve_for_run<train::InstructConfig>(opts->files, opts->overrides, &yaml);
    if (opts->dump) {
      std::fputs(yaml.c_str(), stdout);
      return;
    }
    train::train_instruct(cfg, yaml);
  });
});

}  // namespace
}  // namespace vimo::cli

// `vimo pretrain --config FILE [key=value ...]`: stage 2, motion-language pre-training of the LM.
#include <cstdio>

#include "command.h"
#include "vimo/core/schemas.h"
#include "vimo/train/recipes/pretrain.h"

namespace vimo::cli {
namespace {

core::SchemaRegistrar<train::PretrainConfig> schema("pretrain");

Registrar reg(50, [](CLI::App& app) {
  auto opts = std::make_shared<ConfigOptions>();
  auto* c = app.add_subcommand("pretrain", "stage 2: train the LM on t2m, m2t and reactions; rerun the same command to resume");
  add_config_options(c, *opts);
  c->callback([opts] {
    std::string yaml;
    auto cfg = train::resolve_for_run<train::PretrainConfig>(opts->files, opts->overrides, &yaml);
    if (opts->dump) {
      std::fputs(yaml.c_str(), stdout);
      return;
    }
    train::train_pretrain(cfg, yaml);
  });
});

}  // namespace
}  // namespace vimo::cli

// `vimo tokenizer train --config FILE [key=value ...]`: stage 1, the RQ-VAE motion tokenizer.
#include <cstdio>

#include "command.h"
#include "vimo/core/schemas.h"
#include "vimo/train/recipes/tokenizer.h"

namespace vimo::cli {
namespace {

core::SchemaRegistrar<train::TokenizerConfig> schema("tokenizer");

Registrar reg(40, [](CLI::App& app) {
  auto* g = group(app, "tokenizer", "stage 1: the RQ-VAE motion tokenizer (train, eval, encode, decode)");
  auto opts = std::make_shared<ConfigOptions>();
  auto* c = g->add_subcommand("train", "train the RQ-VAE on a packed dataset; rerun the same command to resume");
  add_config_options(c, *opts);
  c->callback([opts] {
    std::string yaml;
    auto cfg = train::resolve_for_run<train::TokenizerConfig>(opts->files, opts->overrides, &yaml);
    if (opts->dump) {
      std::fputs(yaml.c_str(), stdout);
      return;
    }
    train::train_tokenizer(cfg, yaml);
  });
});

}  // namespace
}  // namespace vimo::cli

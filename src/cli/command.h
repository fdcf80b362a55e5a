// CLI plumbing: self-registering subcommands and the options every config-driven command shares.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "vimo/core/config.h"

namespace vimo::cli {

using CommandSetup = std::function<void(CLI::App& app)>;
// Each src/cli/*.cpp registers its subcommands with a static Registrar (ordered by `order`).
struct Registrar {
  Registrar(int order, CommandSetup setup);
};
void setup_all(CLI::App& app);

// --config FILE (repeatable), trailing section.key=value overrides, --dump-config.
struct ConfigOptions {
  std::vector<std::string> files;
  std::vector<std::string> overrides;
  bool dump = false;
  core::ConfigSource source() const;
};
void add_config_options(CLI::App* cmd, ConfigOptions& o);

// Resolves config type C from the options; when --dump-config was given prints it and returns false.
template <class C> bool resolve(const ConfigOptions& o, C& out) {
  out = core::resolve_config<C>(o.source());
  if (o.dump) {
    std::fputs(core::dump_config(out).c_str(), stdout);
    return false;
  }
  return true;
}

}  // namespace vimo::cli

namespace vimo::cli {
// Finds or creates the command group `name` (e.g. "motion"), so several files can add to it.
inline CLI::App* group(CLI::App& app, const std::string& name, const std::string& description) {
  for (auto* sc : app.get_subcommands([](CLI::App*) { return true; }))
    if (sc->get_name() == name) return sc;
  auto* g = app.add_subcommand(name, description);
  g->require_subcommand(1);
  return g;
}
}  // namespace vimo::cli

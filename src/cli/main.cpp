// vimo's entry point: builds the subcommand tree and turns errors into messages and exit codes.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"

namespace vimo::cli {
namespace {
std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> r;
  return r;
}
}  // namespace

Registrar::Registrar(int order, CommandSetup setup) { registry().emplace_back(order, std::move(setup)); }

void setup_all(CLI::App& app) {
  auto& r = registry();
  std::stable_sort(r.begin(), r.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : r) setup(app);
}

core::ConfigSource ConfigOptions::source() const {
  auto src = core::ConfigSource::from_files(files);
  src.apply_overrides(overrides);
  return src;
}

void add_config_options(CLI::App* cmd, ConfigOptions& o) {
  // One file per --config, so the section.key=value overrides after it stay positional.
  cmd->add_option("--config,-c", o.files, "YAML config file(s); later files win")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  cmd->add_option("overrides", o.overrides, "section.key=value overrides (e.g. optim.lr=3e-4 run.dir=runs/x)");
  cmd->add_flag("--dump-config", o.dump, "print the resolved config with help text and exit");
}

}  // namespace vimo::cli

int main(int argc, char** argv) {
  CLI::App app{"vimo: train and evaluate motion-language models of two-person interaction (VIM)"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print versions, devices, BLAS and threads, then exit");
  vimo::cli::setup_all(app);
  if (argc > 1 && argv[1][0] != '-') {  // a first word that is no command: say so (CLI11 would print the help)
    std::vector<std::string> names;
    for (auto* sc : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sc->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string near = vimo::core::detail::suggest(argv[1], names);
      vimo::log::error("unknown command '", argv[1], "'", near.empty() ? "" : " (did you mean '" + near + "'?)",
                       "; `vimo --help` lists the commands");
      return vimo::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
    if (version) {
      vimo::core::apply_threads(0);
      std::cout << vimo::core::runtime_report();
      return vimo::kExitOk;
    }
    if (app.get_subcommands().empty()) {
      std::cout << app.help();
      return vimo::kExitUsage;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const vimo::Error& e) {
    vimo::log::error(e.what());
    return vimo::kExitError;
  } catch (const c10::Error& e) {
    vimo::log::error("libtorch: ", e.what_without_backtrace());
    return vimo::kExitError;
  } catch (const std::exception& e) {
    vimo::log::error(e.what());
    return vimo::kExitError;
  }
  if (vimo::core::stop_requested()) return vimo::kExitInterrupted;
  return vimo::kExitOk;
}

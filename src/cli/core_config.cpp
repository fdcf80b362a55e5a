// `vimo config check FILE...`: validates config files against their command's schema.
#include <filesystem>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/schemas.h"

namespace vimo::cli {
namespace {

std::string infer_schema(const std::string& file) {
  // configs/<schema>/<name>.yaml
  const auto parent = std::filesystem::path(file).parent_path().filename().string();
  if (core::schema_registry().count(parent) || core::file_check_registry().count(parent)) return parent;
  std::string known;
  for (const auto& [k, v] : core::schema_registry()) known += " " + k;
  for (const auto& [k, v] : core::file_check_registry()) known += " " + k;
  throw Error("cannot tell which command '" + file + "' is for: put it under configs/<schema>/ or pass --schema (one of:" +
              known + ")");
}

struct Check {
  std::vector<std::string> files;
  std::string schema;
  bool print = false;
};

Registrar reg(0, [](CLI::App& app) {
  auto* g = group(app, "config", "validate and inspect YAML configs");
  auto opts = std::make_shared<Check>();
  auto* c = g->add_subcommand("check", "validate config files: unknown keys, types, ranges, base chains");
  c->add_option("files", opts->files, "config files")->required();
  c->add_option("--schema", opts->schema, "schema name (default: the file's directory name)");
  c->add_flag("--print", opts->print, "print each resolved config");
  c->callback([opts] {
    int bad = 0;
    for (const auto& f : opts->files) {
      try {
        const std::string named = opts->schema.empty() ? std::filesystem::path(f).parent_path().filename().string() : opts->schema;
        if (auto fc = core::file_check_registry().find(named); fc != core::file_check_registry().end()) {
          std::cout << "ok    " << f << " (" << named << ": " << fc->second(f) << ")\n";
          continue;
        }
        const auto source = core::ConfigSource::from_files({f});  // YAML errors first
        const std::string schema = opts->schema.empty() ? infer_schema(f) : opts->schema;
        auto it = core::schema_registry().find(schema);
        if (it == core::schema_registry().end()) throw Error("unknown schema '" + schema + "'");
        const std::string resolved = it->second(source);
        std::cout << "ok    " << f << " (" << schema << ")\n";
        if (opts->print) std::cout << resolved;
      } catch (const Error& e) {
        ++bad;
        std::cout << "FAIL  " << f << ": " << e.what() << "\n";
      }
    }
    if (bad) throw Error(std::to_string(bad) + " of " + std::to_string(opts->files.size()) + " config file(s) failed");
  });
});

}  // namespace
}  // namespace vimo::cli

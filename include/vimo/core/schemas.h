// Registry of config schemas by name (tokenizer, data, lm, ...), used by `vimo config check`.
#pragma once
#include <functional>
#include <map>
#include <string>

#include "vimo/core/config.h"

namespace vimo::core {

// Validates a source against a schema and returns the resolved YAML; throws vimo::Error.
using SchemaCheck = std::function<std::string(const ConfigSource&)>;
std::map<std::string, SchemaCheck>& schema_registry();

// YAML files that are not configs (e.g. instruction templates under configs/templates/): a check of
// the file itself, by the directory name; returns a one-line summary, throws vimo::Error.
using FileCheck = std::function<std::string(const std::string& path)>;
std::map<std::string, FileCheck>& file_check_registry();

template <class C> struct SchemaRegistrar {
  explicit SchemaRegistrar(const std::string& name) {
    schema_registry()[name] = [](const ConfigSource& src) {
      C c = resolve_config<C>(src);
      return dump_config(c);
    };
  }
};

}  // namespace vimo::core

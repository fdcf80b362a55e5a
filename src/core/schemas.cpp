// The config schema registry.
#include "vimo/core/schemas.h"

namespace vimo::core {
std::map<std::string, SchemaCheck>& schema_registry() {
  static std::map<std::string, SchemaCheck> r;
  return r;
}
std::map<std::string, FileCheck>& file_check_registry() {
  static std::map<std::string, FileCheck> r;
  return r;
}
}  // namespace vimo::core

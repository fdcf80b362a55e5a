// Typed YAML configuration: files with `base:` inheritance, dotted overrides, and structs that
// declare each key once (name, default, help, bounds) through a visit() method.
#pragma once
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <type_traits>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vimo/core/error.h"

namespace vimo::core {

// Where a config value came from, for error messages.
struct Origin {
  std::string file;  // "<default>", "<command line>" or a path
  int line = -1;     // 1-based, -1 when unknown
  std::string describe() const;
};

// Per-key options: numeric bounds, allowed strings, architecture flag.
struct KeyOpts {
  std::optional<double> lo, hi;
  std::vector<std::string> choices;
  bool arch = false;  // stored with the weights; a resumed/later stage takes it from the saved run
  KeyOpts& min(double v) { lo = v; return *this; }
  KeyOpts& max(double v) { hi = v; return *this; }
  KeyOpts& one_of(std::vector<std::string> c) { choices = std::move(c); return *this; }
  KeyOpts& architecture() { arch = true; return *this; }
};
inline KeyOpts opt() { return {}; }

// A merged YAML mapping plus the origin of each leaf key (dotted path).
class ConfigSource {
 public:
  ConfigSource();
  // Loads the files in order (later wins), each following its `base:` chain first.
  static ConfigSource from_files(const std::vector<std::string>& files);
  // `section.key=value`; the value is parsed as YAML (so 3, 3.0, true, [1, 2], text).
  void apply_override(const std::string& assignment);
  void apply_overrides(const std::vector<std::string>& assignments);
  // Takes `keys` (dotted) from `saved` where present, marking them as coming from `origin`.
  void overlay(const YAML::Node& saved, const std::vector<std::string>& keys, const std::string& origin);
  void set(const std::string& dotted, const YAML::Node& value, const Origin& origin);

  std::optional<YAML::Node> find(const std::string& dotted) const;
  Origin origin(const std::string& dotted) const;
  std::vector<std::string> leaf_keys() const;  // dotted paths of every scalar/sequence leaf
  const std::vector<std::string>& files() const { return files_; }

 private:
  void merge_file(const std::string& path, std::set<std::string>& chain);
  void merge_node(const YAML::Node& node, const std::string& prefix, const Origin& file_origin);

  YAML::Node root_;
  std::map<std::string, Origin> origins_;
  std::vector<std::string> files_;
};

namespace detail {
std::string type_name(const int*);
std::string type_name(const int64_t*);
std::string type_name(const double*);
std::string type_name(const float*);
std::string type_name(const bool*);
std::string type_name(const std::string*);
std::string type_name(const std::vector<int64_t>*);
std::string type_name(const std::vector<double>*);
std::string type_name(const std::vector<std::string>*);
// Converts `node` into `out`; returns false on a type mismatch.
bool convert(const YAML::Node& node, int& out);
bool convert(const YAML::Node& node, int64_t& out);
bool convert(const YAML::Node& node, double& out);
bool convert(const YAML::Node& node, float& out);
bool convert(const YAML::Node& node, bool& out);
bool convert(const YAML::Node& node, std::string& out);
bool convert(const YAML::Node& node, std::vector<int64_t>& out);
bool convert(const YAML::Node& node, std::vector<double>& out);
bool convert(const YAML::Node& node, std::vector<std::string>& out);
YAML::Node to_node(int v);
YAML::Node to_node(int64_t v);
YAML::Node to_node(double v);
YAML::Node to_node(float v);
YAML::Node to_node(bool v);
YAML::Node to_node(const std::string& v);
YAML::Node to_node(const std::vector<int64_t>& v);
YAML::Node to_node(const std::vector<double>& v);
YAML::Node to_node(const std::vector<std::string>& v);
double as_number(int v);
double as_number(int64_t v);
double as_number(double v);
double as_number(float v);
template <class T> double as_number(const T&) { return 0; }
std::string suggest(const std::string& key, const std::vector<std::string>& known);
}  // namespace detail

// Visitor that fills a struct from a ConfigSource and records which keys it consumed.
class ConfigReader {
 public:
  explicit ConfigReader(const ConfigSource& src) : src_(src) {}
  template <class S> void section(const std::string& name, S& s) {
    prefix_.push_back(name);
    s.visit(*this);
    prefix_.pop_back();
  }
  template <class T> void key(const std::string& name, T& value, const std::string& help, const KeyOpts& o = {}) {
    const std::string path = dotted(name);
    known_.push_back(path);
    if (o.arch) arch_.push_back(path);
    auto node = src_.find(path);
    if (!node) return;
    if (!detail::convert(*node, value))
      throw Error("config key '" + path + "' " + src_.origin(path).describe() + ": expected " +
                  detail::type_name(&value) + ", got '" + YAML::Dump(*node) + "' (" + help + ")");
    check(path, value, o);
  }
  // Throws on any key in the source that no struct declared.
  void reject_unknown() const;
  const std::vector<std::string>& known() const { return known_; }
  const std::vector<std::string>& arch_keys() const { return arch_; }

 private:
  std::string dotted(const std::string& name) const;
  template <class T> void check(const std::string& path, const T& v, const KeyOpts& o) {
    if constexpr (std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) {
      const double x = detail::as_number(v);
      if ((o.lo && x < *o.lo) || (o.hi && x > *o.hi)) range_error(path, x, o);
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!o.choices.empty() && std::find(o.choices.begin(), o.choices.end(), v) == o.choices.end())
        choice_error(path, v, o);
    }
  }
  [[noreturn]] void range_error(const std::string& path, double x, const KeyOpts& o) const;
  [[noreturn]] void choice_error(const std::string& path, const std::string& v, const KeyOpts& o) const;

  const ConfigSource& src_;
  std::vector<std::string> prefix_, known_, arch_;
};

// Visitor that writes a struct as commented YAML.
class ConfigDumper {
 public:
  template <class S> void section(const std::string& name, S& s) {
    begin_section(name);
    s.visit(*this);
    end_section();
  }
  template <class T> void key(const std::string& name, T& value, const std::string& help, const KeyOpts& = {}) {
    emit(name, detail::to_node(value), help);
  }
  std::string str() const { return out_.str(); }
  YAML::Node node() const { return YAML::Load(out_.str()); }

 private:
  void begin_section(const std::string& name);
  void end_section();
  void emit(const std::string& name, const YAML::Node& v, const std::string& help);
  std::ostringstream out_;
  int depth_ = 0;
};

// Everything a command needs to resolve its config.
struct ConfigArgs {
  std::vector<std::string> files;
  std::vector<std::string> overrides;
};

template <class C> C resolve_config(const ConfigSource& src, std::vector<std::string>* arch_keys = nullptr) {
  C c;
  ConfigReader r(src);
  c.visit(r);
  r.reject_unknown();
  if (arch_keys) *arch_keys = r.arch_keys();
  return c;
}
template <class C> std::string dump_config(C& c) {
  ConfigDumper d;
  c.visit(d);
  return d.str();
}
template <class C> std::vector<std::string> architecture_keys() {
  C c;
  ConfigSource empty;
  ConfigReader r(empty);
  c.visit(r);
  return r.arch_keys();
}

// Atomically writes `text` to `path` (temporary name, then rename).
void write_config_file(const std::string& path, const std::string& text);

}  // namespace vimo::core

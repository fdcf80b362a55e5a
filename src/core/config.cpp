// YAML config loading, inheritance, overrides, typed conversion and dumping.
#include "vimo/core/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "vimo/core/fs.h"

namespace fs = std::filesystem;

namespace vimo::core {

std::string Origin::describe() const {
  if (file.empty()) return "(built-in default)";
  if (line > 0) return "in " + file + " line " + std::to_string(line);
  return "in " + file;
}

ConfigSource::ConfigSource() : root_(YAML::NodeType::Map) {}

ConfigSource ConfigSource::from_files(const std::vector<std::string>& files) {
  ConfigSource s;
  for (const auto& f : files) {
    std::set<std::string> chain;
    s.merge_file(f, chain);
    s.files_.push_back(f);
  }
  return s;
}

void ConfigSource::merge_file(const std::string& path, std::set<std::string>& chain) {
  if (!fs::exists(path))
    throw Error("config file '" + path + "' does not exist (check the path given to --config or in `base:`)");
  const std::string canon = fs::weakly_canonical(path).string();
  if (chain.count(canon)) throw Error("config file '" + path + "': `base:` chain loops back to itself");
  chain.insert(canon);
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Error("config file '" + path + "' is not valid YAML: line " + std::to_string(e.mark.line + 1) +
                ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (doc.IsNull()) return;
  if (!doc.IsMap()) throw Error("config file '" + path + "' must be a YAML mapping of sections (run:, data:, ...)");
  if (auto base = doc["base"]) {
    if (!base.IsScalar()) throw Error("config file '" + path + "': `base:` must be a path");
    fs::path b = fs::path(path).parent_path() / base.as<std::string>();
    merge_file(b.string(), chain);
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (k == "base") continue;
    YAML::Node one(YAML::NodeType::Map);
    one[k] = it->second;
    merge_node(one, "", Origin{path, -1});
  }
}

void ConfigSource::merge_node(const YAML::Node& node, const std::string& prefix, const Origin& file_origin) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    const std::string path = prefix.empty() ? k : prefix + "." + k;
    const YAML::Node& v = it->second;
    if (v.IsMap()) {
      merge_node(v, path, file_origin);
    } else {
      Origin o = file_origin;
      o.line = it->first.Mark().line >= 0 ? it->first.Mark().line + 1 : -1;
      set(path, v, o);
    }
  }
}

void ConfigSource::set(const std::string& dotted, const YAML::Node& value, const Origin& origin) {
  std::vector<std::string> parts;
  std::stringstream ss(dotted);
  for (std::string p; std::getline(ss, p, '.');) {
    if (p.empty()) throw Error("config key '" + dotted + "' " + origin.describe() + " has an empty component");
    parts.push_back(p);
  }
  // yaml-cpp nodes are references: walk by re-binding through a vector of handles.
  // yaml-cpp nodes are handles and Node::operator= rebinds the referenced data, so the walk only
  // ever copy-constructs handles.
  std::vector<YAML::Node> chain{root_};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const YAML::Node existing = chain.back()[parts[i]];
    if (!existing.IsMap()) {
      if (existing.IsDefined() && !existing.IsNull())
        throw Error("config key '" + dotted + "' " + origin.describe() + ": '" + parts[i] + "' is a value, not a section");
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
    }
    chain.push_back(chain.back()[parts[i]]);
  }
  chain.back()[parts.back()] = YAML::Clone(value);
  // Drop origins of keys that this assignment replaced (a section overwritten by a value).
  for (auto it = origins_.begin(); it != origins_.end();) {
    if (it->first.rfind(dotted + ".", 0) == 0) it = origins_.erase(it); else ++it;
  }
  origins_[dotted] = origin;
}

void ConfigSource::apply_override(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("override '" + assignment + "' must look like section.key=value (e.g. optim.lr=3e-4)");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  YAML::Node v;
  try {
    v = text.empty() ? YAML::Node(std::string()) : YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error("override '" + assignment + "': value is not valid YAML: " + e.msg);
  }
  if (v.IsMap()) throw Error("override '" + assignment + "': give one key per override, not a mapping");
  set(key, v, Origin{"<command line>", -1});
}

void ConfigSource::apply_overrides(const std::vector<std::string>& assignments) {
  for (const auto& a : assignments) apply_override(a);
}

void ConfigSource::overlay(const YAML::Node& saved, const std::vector<std::string>& keys, const std::string& origin) {
  for (const auto& k : keys) {
    YAML::Node n = YAML::Clone(saved);
    std::stringstream ss(k);
    bool found = true;
    for (std::string p; std::getline(ss, p, '.');) {
      if (!n.IsMap() || !n[p]) { found = false; break; }
      n = n[p];
    }
    if (found) set(k, n, Origin{origin, -1});
  }
}

std::optional<YAML::Node> ConfigSource::find(const std::string& dotted) const {
  YAML::Node n = YAML::Clone(root_);
  std::stringstream ss(dotted);
  for (std::string p; std::getline(ss, p, '.');) {
    if (!n.IsMap() || !n[p]) return std::nullopt;
    n = n[p];
  }
  return n;
}

Origin ConfigSource::origin(const std::string& dotted) const {
  auto it = origins_.find(dotted);
  return it == origins_.end() ? Origin{} : it->second;
}

std::vector<std::string> ConfigSource::leaf_keys() const {
  std::vector<std::string> out;
  for (const auto& [k, o] : origins_) out.push_back(k);
  return out;
}

// ---- typed conversion ----
namespace detail {
std::string type_name(const int*) { return "an integer"; }
std::string type_name(const int64_t*) { return "an integer"; }
std::string type_name(const double*) { return "a number"; }
std::string type_name(const float*) { return "a number"; }
std::string type_name(const bool*) { return "true or false"; }
std::string type_name(const std::string*) { return "a string"; }
std::string type_name(const std::vector<int64_t>*) { return "a list of integers"; }
std::string type_name(const std::vector<double>*) { return "a list of numbers"; }
std::string type_name(const std::vector<std::string>*) { return "a list of strings"; }

static bool parse_int(const YAML::Node& n, int64_t& out) {
  if (!n.IsScalar()) return false;
  const std::string s = n.Scalar();
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end != '\0') return false;
  out = v;
  return true;
}
static bool parse_double(const YAML::Node& n, double& out) {
  if (!n.IsScalar()) return false;
  const std::string s = n.Scalar();
  if (s.empty()) return false;
  if (s == ".inf" || s == "inf") { out = INFINITY; return true; }
  if (s == "-.inf" || s == "-inf") { out = -INFINITY; return true; }
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || std::isnan(v)) return false;
  out = v;
  return true;
}
bool convert(const YAML::Node& n, int& out) {
  int64_t v;
  if (!parse_int(n, v) || v < INT32_MIN || v > INT32_MAX) return false;
  out = static_cast<int>(v);
  return true;
}
bool convert(const YAML::Node& n, int64_t& out) { return parse_int(n, out); }
bool convert(const YAML::Node& n, double& out) { return parse_double(n, out); }
bool convert(const YAML::Node& n, float& out) {
  double v;
  if (!parse_double(n, v)) return false;
  out = static_cast<float>(v);
  return true;
}
bool convert(const YAML::Node& n, bool& out) {
  if (!n.IsScalar()) return false;
  const std::string s = n.Scalar();
  if (s == "true" || s == "True" || s == "yes") { out = true; return true; }
  if (s == "false" || s == "False" || s == "no") { out = false; return true; }
  return false;
}
bool convert(const YAML::Node& n, std::string& out) {
  if (n.IsNull()) { out.clear(); return true; }
  if (!n.IsScalar()) return false;
  out = n.Scalar();
  return true;
}
template <class T> static bool convert_list(const YAML::Node& n, std::vector<T>& out) {
  if (n.IsNull()) { out.clear(); return true; }
  if (!n.IsSequence()) return false;
  std::vector<T> v(n.size());
  for (size_t i = 0; i < n.size(); ++i)
    if (!convert(n[i], v[i])) return false;
  out = std::move(v);
  return true;
}
bool convert(const YAML::Node& n, std::vector<int64_t>& out) { return convert_list(n, out); }
bool convert(const YAML::Node& n, std::vector<double>& out) { return convert_list(n, out); }
bool convert(const YAML::Node& n, std::vector<std::string>& out) { return convert_list(n, out); }

YAML::Node to_node(int v) { return YAML::Node(v); }
YAML::Node to_node(int64_t v) { return YAML::Node(static_cast<long long>(v)); }
YAML::Node to_node(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  std::string t = s.str();
  if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
  return YAML::Node(t);
}
YAML::Node to_node(float v) { return to_node(static_cast<double>(v)); }
YAML::Node to_node(bool v) { return YAML::Node(v ? "true" : "false"); }
YAML::Node to_node(const std::string& v) { return YAML::Node(v); }
template <class T> static YAML::Node list_node(const std::vector<T>& v) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const auto& x : v) n.push_back(to_node(x));
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}
YAML::Node to_node(const std::vector<int64_t>& v) { return list_node(v); }
YAML::Node to_node(const std::vector<double>& v) { return list_node(v); }
YAML::Node to_node(const std::vector<std::string>& v) { return list_node(v); }
double as_number(int v) { return v; }
double as_number(int64_t v) { return static_cast<double>(v); }
double as_number(double v) { return v; }
double as_number(float v) { return v; }

static size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}
std::string suggest(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = 4;
  for (const auto& k : known) {
    size_t d = edit_distance(key, k);
    if (d < best_d) { best_d = d; best = k; }
  }
  return best;
}
}  // namespace detail

std::string ConfigReader::dotted(const std::string& name) const {
  std::string p;
  for (const auto& s : prefix_) p += s + ".";
  return p + name;
}

void ConfigReader::reject_unknown() const {
  std::set<std::string> known(known_.begin(), known_.end());
  for (const auto& k : src_.leaf_keys()) {
    if (known.count(k)) continue;
    std::string msg = "unknown config key '" + k + "' " + src_.origin(k).describe();
    const std::string s = detail::suggest(k, known_);
    if (!s.empty()) msg += "; did you mean '" + s + "'?";
    msg += " (--dump-config lists every key this command accepts)";
    throw Error(msg);
  }
}

void ConfigReader::range_error(const std::string& path, double x, const KeyOpts& o) const {
  std::ostringstream m;
  m << "config key '" << path << "' " << src_.origin(path).describe() << ": value " << x << " is out of range";
  if (o.lo) m << " (minimum " << *o.lo << ")";
  if (o.hi) m << " (maximum " << *o.hi << ")";
  throw Error(m.str());
}

void ConfigReader::choice_error(const std::string& path, const std::string& v, const KeyOpts& o) const {
  std::string all;
  for (const auto& c : o.choices) all += (all.empty() ? "" : ", ") + c;
  throw Error("config key '" + path + "' " + src_.origin(path).describe() + ": '" + v + "' is not one of: " + all);
}

void ConfigDumper::begin_section(const std::string& name) {
  out_ << std::string(2 * depth_, ' ') << name << ":\n";
  ++depth_;
}
void ConfigDumper::end_section() { --depth_; }
void ConfigDumper::emit(const std::string& name, const YAML::Node& v, const std::string& help) {
  YAML::Emitter e;
  e << v;
  out_ << std::string(2 * depth_, ' ') << name << ": " << e.c_str() << "  # " << help << "\n";
}

void write_config_file(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

}  // namespace vimo::core

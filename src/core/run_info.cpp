// Run directory summaries and TensorBoard export from metrics.jsonl.
#include "vimo/core/run_info.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/metrics.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::core {
namespace {
template <class F> int64_t for_each_metric_line(const std::string& dir, F&& f) {
  const auto path = fs::path(dir) / "metrics.jsonl";
  if (!fs::exists(path)) return 0;
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      continue;  // a line cut short by a crash
    }
    ++n;
    f(j);
  }
  return n;
}
}  // namespace

RunSummary summarize_run(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error("run directory '" + dir + "' does not exist");
  RunSummary s;
  s.dir = dir;
  s.has_config = fs::exists(fs::path(dir) / "config.yaml");
  CheckpointManager m(dir, 0);
  for (const auto& c : m.complete()) s.checkpoint_steps.push_back(CheckpointManager::step_of(c));
  if (auto l = m.latest()) s.latest_step = CheckpointManager::step_of(*l);
  const auto best_state = fs::path(dir) / "best" / "state.json";
  if (fs::exists(best_state)) {
    try {
      s.best_step = json::parse(read_file(best_state.string())).value("step", int64_t{-1});
    } catch (const json::exception&) {
    }
  }
  s.metric_lines = for_each_metric_line(dir, [&](const json& j) {
    const int64_t step = j.value("step", int64_t{-1});
    s.last_step = std::max(s.last_step, step);
    auto& dst = j.value("split", std::string("train")) == "train" ? s.last_train : s.last_val;
    for (auto& [k, v] : j.items())
      if (v.is_number() && k != "step" && k != "time") dst[k] = v.get<double>();
  });
  return s;
}

std::string RunSummary::to_text() const {
  std::ostringstream o;
  o << "run          " << dir << (has_config ? "" : "  (no config.yaml)") << "\n";
  o << "checkpoints  ";
  for (auto s : checkpoint_steps) o << s << " ";
  o << (checkpoint_steps.empty() ? "none" : "") << "\n";
  o << "latest       " << (latest_step ? std::to_string(*latest_step) : "none") << "\n";
  o << "best         " << (best_step ? std::to_string(*best_step) : "none") << "\n";
  o << "metrics      " << metric_lines << " lines, last step " << last_step << "\n";
  for (const auto& [split, m] : {std::pair{"train", &last_train}, std::pair{"val", &last_val}})
    for (const auto& [k, v] : *m) o << "  " << split << "/" << k << " = " << v << "\n";
  return o.str();
}

int64_t export_tensorboard(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "metrics.jsonl"))
    throw Error("'" + dir + "' has no metrics.jsonl to export (is it a vimo run directory?)");
  EventWriter w((fs::path(dir) / "tb").string());
  int64_t n = 0;
  for_each_metric_line(dir, [&](const json& j) {
    const int64_t step = j.value("step", int64_t{0});
    const std::string split = j.value("split", std::string("train"));
    for (auto& [k, v] : j.items())
      if (v.is_number() && k != "step" && k != "time") {
        w.scalar(split + "/" + k, v.get<double>(), step);
        ++n;
      }
  });
  w.flush();
  return n;
}

}  // namespace vimo::core

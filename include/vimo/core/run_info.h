// Reading a run directory back: a summary for `vimo runs show` and rebuilding tb/ from metrics.jsonl.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vimo::core {

struct RunSummary {
  std::string dir;
  bool has_config = false;
  std::vector<int64_t> checkpoint_steps;  // complete ones, ascending
  std::optional<int64_t> latest_step, best_step;
  int64_t metric_lines = 0;
  std::map<std::string, double> last_train, last_val;  // last value of each metric per split
  int64_t last_step = -1;
  std::string to_text() const;
};

RunSummary summarize_run(const std::string& dir);
// Writes a fresh TensorBoard event file under <dir>/tb from <dir>/metrics.jsonl; returns scalars written.
int64_t export_tensorboard(const std::string& dir);

}  // namespace vimo::core

// Run directory layout and checkpoints: atomic step_XXXXXXXX dirs with DONE markers, `latest`,
// keep-last-k, best/, and discovery of the newest complete checkpoint for resume.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vimo::core {

class CheckpointManager {
 public:
  CheckpointManager(std::string run_dir, int keep_last);
  // Creates checkpoints/step_<step>: fill(tmp_dir) writes the files, then DONE is written, the
  // directory is renamed into place, `latest` is updated and old checkpoints beyond keep_last are
  // removed. Returns the final directory.
  std::string save(int64_t step, const std::function<void(const std::string& dir)>& fill);
  // Replaces <run_dir>/best with a copy of `ckpt_dir` (atomically, via rename).
  void mark_best(const std::string& ckpt_dir);
  // Newest complete checkpoint: the one `latest` names if it has DONE, else the highest-step one with DONE.
  std::optional<std::string> latest() const;
  std::vector<std::string> complete() const;  // ascending by step
  static std::string step_name(int64_t step);
  static int64_t step_of(const std::string& ckpt_dir);
  const std::string& run_dir() const { return run_dir_; }
  std::string checkpoints_dir() const;

 private:
  void prune();
  std::string run_dir_;
  int keep_last_;
};

}  // namespace vimo::core

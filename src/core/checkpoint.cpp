// Checkpoint directories: write to a temporary name, mark DONE, rename; resume discovery.
#include "vimo/core/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"

namespace fs = std::filesystem;

namespace vimo::core {

CheckpointManager::CheckpointManager(std::string run_dir, int keep_last)
    : run_dir_(std::move(run_dir)), keep_last_(keep_last) {}

std::string CheckpointManager::checkpoints_dir() const { return (fs::path(run_dir_) / "checkpoints").string(); }

std::string CheckpointManager::step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

int64_t CheckpointManager::step_of(const std::string& ckpt_dir) {
  const std::string n = fs::path(ckpt_dir).filename().string();
  if (n.rfind("step_", 0) != 0) return -1;
  try {
    size_t pos = 0;
    const long long v = std::stoll(n.substr(5), &pos);
    return pos == n.size() - 5 ? v : -1;
  } catch (...) {
    return -1;
  }
}

std::string CheckpointManager::save(int64_t step, const std::function<void(const std::string&)>& fill) {
  ensure_writable_dir(checkpoints_dir());
  const fs::path final_dir = fs::path(checkpoints_dir()) / step_name(step);
  const fs::path tmp = fs::path(checkpoints_dir()) / (step_name(step) + ".tmp");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  try {
    fill(tmp.string());
    write_file_atomic((tmp / "DONE").string(), "complete\n");
    if (fs::exists(final_dir)) fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  write_file_atomic((fs::path(run_dir_) / "latest").string(), "checkpoints/" + step_name(step) + "\n");
  prune();
  return final_dir.string();
}

std::vector<std::string> CheckpointManager::complete() const {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(checkpoints_dir())) return {};
  for (const auto& e : fs::directory_iterator(checkpoints_dir())) {
    if (!e.is_directory()) continue;
    const int64_t s = step_of(e.path().string());
    if (s >= 0 && fs::exists(e.path() / "DONE")) found.emplace_back(s, e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [s, p] : found) out.push_back(p);
  return out;
}

std::optional<std::string> CheckpointManager::latest() const {
  const fs::path lf = fs::path(run_dir_) / "latest";
  if (fs::exists(lf)) {
    std::string rel = read_file(lf.string());
    while (!rel.empty() && (rel.back() == '\n' || rel.back() == ' ')) rel.pop_back();
    const fs::path p = fs::path(run_dir_) / rel;
    if (fs::exists(p / "DONE")) return p.string();
    log::warn("'", lf.string(), "' names ", rel, ", which is incomplete; looking for another checkpoint");
  }
  auto all = complete();
  if (all.empty()) return std::nullopt;
  return all.back();
}

void CheckpointManager::prune() {
  if (keep_last_ <= 0) return;
  auto all = complete();
  for (size_t i = 0; i + keep_last_ < all.size(); ++i) fs::remove_all(all[i]);
}

void CheckpointManager::mark_best(const std::string& ckpt_dir) {
  const fs::path best = fs::path(run_dir_) / "best";
  const fs::path tmp = fs::path(run_dir_) / "best.tmp";
  const fs::path old = fs::path(run_dir_) / "best.old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::remove_all(old, ec);
  fs::copy(ckpt_dir, tmp, fs::copy_options::recursive);
  if (fs::exists(best)) fs::rename(best, old);
  fs::rename(tmp, best);
  fs::remove_all(old, ec);
}

}  // namespace vimo::core

// Shared reader plumbing, the format dispatch (io.h) and the clips folder format (clips.h).
#include "vimo/motion/io.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/clips.h"
#include "vimo/motion/humanml3d.h"
#include "vimo/motion/interhuman.h"
#include "vimo/motion/interx.h"

namespace vimo::motion {
namespace fs = std::filesystem;

std::string ReadStats::summary() const {
  return std::to_string(read) + " clips read, " + std::to_string(too_short) + " skipped as shorter than the minimum, " +
         std::to_string(truncated) + " truncated to the maximum length, " + std::to_string(ignored) +
         " on the ignore list, " + std::to_string(missing) + " with missing files";
}

std::vector<Clip> read_dataset(const std::string& format, const std::string& root, const std::string& split,
                               const ReadOptions& opts, ReadStats* stats) {
  if (format == "interhuman") return read_interhuman(root, split, opts, stats);
  if (format == "interx") return read_interx(root, split, opts, stats);
  if (format == "humanml3d") return read_humanml3d(root, split, opts, stats);
  if (format == "clips") return read_clips(root, opts, stats);
  throw Error("unknown dataset format '" + format + "'; use interhuman, interx, humanml3d or clips");
}

namespace io_detail {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream f(path);
  VIMO_CHECK(f.good(), "cannot read " + path + "; check that the file exists and is readable");
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) {
    auto t = trim(line);
    if (!t.empty()) out.push_back(t);
  }
  return out;
}

std::string first_existing(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    if (fs::exists(c)) return c;
  return "";
}

bool accept_length(Clip& clip, const ReadOptions& opts, ReadStats& stats) {
  int64_t t = clip.motion.size(0);
  if (t < opts.min_frames) {
    ++stats.too_short;
    return false;
  }
  if (opts.max_frames > 0 && t > opts.max_frames) {
    clip.motion = clip.motion.narrow(0, 0, opts.max_frames).contiguous();
    ++stats.truncated;
  }
  ++stats.read;
  return true;
}

void report_missing(const std::string& what, const ReadStats& stats, size_t listed, const ReadOptions& opts) {
  if (stats.missing_ids.empty()) return;
  std::string names;
  for (size_t i = 0; i < stats.missing_ids.size() && i < 10; ++i) names += (i ? ", " : "") + stats.missing_ids[i];
  if (stats.missing_ids.size() > 10) names += ", ... (" + std::to_string(stats.missing_ids.size() - 10) + " more)";
  std::string msg = what + ": files missing for " + std::to_string(stats.missing_ids.size()) + " of " +
                    std::to_string(listed) + " listed clips: " + names;
  VIMO_CHECK(stats.missing_ids.size() < listed,
             msg + "; the whole split is missing: check the dataset root and its layout (docs/motion.md)");
  VIMO_CHECK(!opts.strict, msg + "; restore them or remove the ids from the split list");
  log::warn(msg + " (skipped)");
}

}  // namespace io_detail

Clip read_clip_file(const std::string& npy) {
  auto m = core::load_npy(npy);
  VIMO_CHECK(m.dim() == 3 && (m.size(1) == 1 || m.size(1) == 2) && m.size(2) == kFeatureDim,
             npy + ": expected features [T, 2, 262] (or [T, 1, 262]), got " + c10::str(m.sizes()) +
                 "; joints [T, 22, 3] are turned into features with `vimo motion from-joints`");
  m = m.to(torch::kFloat32).contiguous();
  check_finite(m, npy);
  Clip c{fs::path(npy).stem().string(), m, {}};
  auto txt = fs::path(npy).replace_extension(".txt").string();
  if (fs::exists(txt)) c.captions = io_detail::read_lines(txt);
  return c;
}

std::vector<Clip> read_clips(const std::string& dir, const ReadOptions& opts, ReadStats* stats_out) {
  VIMO_CHECK(fs::is_directory(dir), dir + ": not a folder; the clips format is a folder of <id>.npy [T, 2, 262] files");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".npy") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  VIMO_CHECK(!files.empty(), dir + ": holds no .npy clips");
  ReadStats stats;
  std::vector<Clip> out;
  for (const auto& f : files) {
    if (opts.limit > 0 && static_cast<int>(out.size()) >= opts.limit) break;
    auto c = read_clip_file(f);
    if (io_detail::accept_length(c, opts, stats)) out.push_back(std::move(c));
  }
  log::info("clips ", dir, ": ", stats.summary());
  if (stats_out) *stats_out = stats;
  return out;
}

void write_clip(const std::string& dir, const Clip& clip) {
  VIMO_CHECK(clip.motion.defined() && clip.motion.dim() == 3 && clip.motion.size(2) == kFeatureDim,
             "write_clip " + clip.id + ": motion must be [T, P, 262]");
  core::save_npy(dir + "/" + clip.id + ".npy", clip.motion.to(torch::kFloat32));
  if (!clip.captions.empty()) {
    std::string text;
    for (const auto& c : clip.captions) text += c + "\n";
    core::write_file_atomic(dir + "/" + clip.id + ".txt", text);
  }
}

}  // namespace vimo::motion

// Maps data.format to the motion module's readers that turn a dataset folder into clips.
#include <algorithm>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/data/prepare.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/io.h"

namespace fs = std::filesystem;

namespace vimo::data {
namespace {

motion::ReadOptions read_options(const DataSection& cfg) {
  motion::ReadOptions o;
  o.min_frames = cfg.min_frames;
  o.max_frames = 0;  // long clips are cut into pieces by prepare, not truncated
  return o;
}

// A folder of BVH files: <id>.bvh is one person; <id>_a.bvh with <id>_b.bvh is a pair. Captions
// come from <id>.txt (one per line) when present.
std::vector<motion::Clip> read_bvh_folder(const DataSection& cfg, SplitReport& report) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(cfg.root))
    if (e.is_regular_file() && e.path().extension() == ".bvh") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  VIMO_CHECK(!files.empty(), "data.root '" + cfg.root + "' holds no *.bvh files (data.format=bvh)");
  auto ends_with = [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  std::vector<motion::Clip> clips;
  for (const auto& f : files) {
    const std::string stem = fs::path(f).stem().string();
    if (ends_with(stem, "_b")) continue;  // read with its _a partner
    std::vector<std::string> paths = {f};
    std::string id = stem;
    if (ends_with(stem, "_a")) {
      id = stem.substr(0, stem.size() - 2);
      const auto partner = (fs::path(cfg.root) / (id + "_b.bvh")).string();
      if (fs::exists(partner)) paths.push_back(partner);
    }
    auto clip = motion::import_bvh(paths);
    clip.id = id;
    const auto txt = (fs::path(cfg.root) / (id + ".txt")).string();
    if (fs::exists(txt)) clip.captions = motion::io_detail::read_lines(txt);
    if (clip.motion.size(0) < cfg.min_frames) {
      ++report.short_skipped;
      continue;
    }
    clips.push_back(std::move(clip));
  }
  return clips;
}

}  // namespace

SourceReader reader_for(const std::string& format) {
  if (format == "bvh")
    return {false, [](const DataSection& cfg, const std::string&, SplitReport& r) { return read_bvh_folder(cfg, r); }};
  const bool has_splits = format != "clips";
  return {has_splits, [format, has_splits](const DataSection& cfg, const std::string& split, SplitReport& r) {
            motion::ReadStats stats;
            auto clips = motion::read_dataset(format, cfg.root, has_splits ? split : "all", read_options(cfg), &stats);
            log::info(format, " ", has_splits ? split : "all", ": ", stats.summary());
            r.short_skipped += stats.too_short;
            return clips;
          }};
}

}  // namespace vimo::data

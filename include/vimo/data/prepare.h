// `vimo data prepare`: reads a dataset with a motion reader, validates, augments and packs it into
// <out>/{train,val,test}.h5 plus stats.safetensors; finished splits are skipped on a rerun.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/motion/clip.h"

namespace vimo::data {

// The `data` section of configs/data/*.yaml.
struct DataSection {
  std::string root;
  std::string out = "data/packed/default";
  std::string format = "interhuman";
  std::vector<std::string> splits = {"train", "val", "test"};
  bool mirror = true;
  bool swap_persons = false;
  std::vector<std::string> augment_splits = {"train"};
  int min_frames = motion::kMinClipFrames;
  int max_frames = motion::kMaxClipFrames;
  std::string on_invalid = "error";
  double std_floor = 1e-3;
  double val_fraction = 0.05;
  double test_fraction = 0.05;
  template <class V>
  void visit(V& v) {
    using core::opt;
    v.key("root", root, "input dataset folder (layout given by data.format)");
    v.key("out", out, "output folder: {train,val,test}.h5, stats.safetensors, config.yaml");
    v.key("format", format, "reader: interhuman | interx | humanml3d | clips | bvh",
          opt().one_of({"interhuman", "interx", "humanml3d", "clips", "bvh"}));
    v.key("splits", splits, "splits to write; each must yield clips");
    v.key("mirror", mirror, "add a left/right mirrored copy (motion and caption words) of each clip in augment_splits");
    v.key("swap_persons", swap_persons,
          "add a copy with the persons' order swapped (re-canonicalized, captions adapted)");
    v.key("augment_splits", augment_splits, "splits that receive the mirror/swap copies");
    v.key("min_frames", min_frames, "clips shorter than this are skipped and counted", opt().min(2).max(100000));
    v.key("max_frames", max_frames, "longer clips are cut into consecutive pieces of at most this many frames",
          opt().min(2).max(100000));
    v.key("on_invalid", on_invalid, "clips with NaN/inf frames: error (stop, naming the clip) | skip (count them)",
          opt().one_of({"error", "skip"}));
    v.key("std_floor", std_floor, "lower bound of each channel's std in stats.safetensors", opt().min(0));
    v.key("val_fraction", val_fraction, "share of clips for val, for formats without split lists (clips, bvh)",
          opt().min(0).max(1));
    v.key("test_fraction", test_fraction, "share of clips for test, for formats without split lists",
          opt().min(0).max(1));
  }
};

struct DataConfig {
  DataSection data;
  template <class V>
  void visit(V& v) {
    v.section("data", data);
  }
};

struct SplitReport {
  bool up_to_date = false;  // skipped: an existing file was written with the same config hash
  int64_t source_clips = 0, clips = 0, frames = 0;
  int64_t short_skipped = 0, invalid_skipped = 0, pieces_added = 0, augmented = 0;
};

// How clips come out of a dataset folder. With split lists the reader is asked per split;
// without, it is asked once (split "") and clips are assigned to splits by a hash of their id.
// A reader that drops clips itself (too short) adds them to report.short_skipped.
struct SourceReader {
  bool has_splits = true;
  std::function<std::vector<motion::Clip>(const DataSection& cfg, const std::string& split, SplitReport& report)> read;
};
// The reader for data.format (the motion module's readers).
SourceReader reader_for(const std::string& format);
struct PrepareReport {
  std::string config_hash;
  std::map<std::string, SplitReport> splits;
  bool stats_written = false;
};

// Hash of everything that determines the packed output (not data.out).
std::string config_hash(const DataSection& cfg);
// Validates (NaN/inf, length), cuts long clips, and adds the augmented copies. `report` is updated.
std::vector<motion::Clip> condition_clips(std::vector<motion::Clip> clips, const DataSection& cfg, bool augment,
                                          SplitReport& report);
// The whole command; `force` rewrites up-to-date outputs.
PrepareReport prepare_dataset(const DataSection& cfg, const SourceReader& reader, bool force = false);
PrepareReport prepare_dataset(const DataSection& cfg, bool force = false);

}  // namespace vimo::data

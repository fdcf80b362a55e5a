// What every dataset reader shares: options, counters, split lists and clip-length rules, plus
// read_dataset(), which picks a reader by format name.
#pragma once
#include <string>
#include <vector>

#include "vimo/motion/clip.h"

namespace vimo::motion {

struct ReadOptions {
  int min_frames = kMinClipFrames;  // shorter clips (feature frames) are skipped and counted
  int max_frames = kMaxClipFrames;  // longer clips keep their first max_frames frames; 0 keeps all
  // Missing files for some ids of a split: false logs them and skips those ids, true throws.
  bool strict = false;
  int limit = 0;  // read at most this many clips (0: all); for quick looks at big datasets
};

struct ReadStats {
  int read = 0, too_short = 0, truncated = 0, ignored = 0, missing = 0;
  std::vector<std::string> missing_ids;  // ids of the split whose files are absent
  std::string summary() const;           // one line for the log
};

// Reads a dataset of `format` ("interhuman", "interx", "humanml3d", "clips") for `split` (train,
// val, test, or "all" where the format has no split files: clips).
std::vector<Clip> read_dataset(const std::string& format, const std::string& root, const std::string& split,
                               const ReadOptions& opts = {}, ReadStats* stats = nullptr);

namespace io_detail {
// Non-empty trimmed lines of a text file; throws naming the file when it cannot be read.
std::vector<std::string> read_lines(const std::string& path);
std::string trim(const std::string& s);
// The first of `candidates` that exists, or "" when none does.
std::string first_existing(const std::vector<std::string>& candidates);
// Applies min/max frames to a finished clip: returns false (and counts it) when it is too short.
bool accept_length(Clip& clip, const ReadOptions& opts, ReadStats& stats);
// Logs missing ids (up to 10 named), throws when strict or when nothing of the split was found.
void report_missing(const std::string& what, const ReadStats& stats, size_t listed, const ReadOptions& opts);
}  // namespace io_detail

}  // namespace vimo::motion

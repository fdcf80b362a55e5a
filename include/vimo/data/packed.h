// Packed motion datasets: one HDF5 file per split holding every frame in one float32 array
// [N_frames, P, 262] plus a clip index (id, offset, length, persons, captions).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vimo/motion/clip.h"

namespace vimo::data {

constexpr int64_t kPackedFormatVersion = 1;

// One row per clip; clip i's frames are rows [offsets[i], offsets[i] + lengths[i]) of /motion.
struct ClipIndex {
  std::vector<std::string> ids;
  std::vector<int64_t> offsets, lengths;
  std::vector<int32_t> persons;  // persons present (1 or 2); absent persons are zero-filled
  std::vector<std::vector<std::string>> captions;
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// Writes `clips` (each motion [T, P_i, 262] float, P_i <= 2) to `path` atomically: a temporary
// name, renamed when complete. The frame array has P = max P_i persons. `attrs` become string
// attributes of the root group (split, source format, config hash, counts).
void write_packed(const std::string& path, const std::vector<motion::Clip>& clips,
                  const std::map<std::string, std::string>& attrs = {});

// A packed split opened for reading. kMemory loads the whole frame array once; kSlices reads
// each request from the file (for datasets larger than memory). Copies share the same data.
class PackedDataset {
 public:
  enum class Mode { kMemory, kSlices };
  static PackedDataset open(const std::string& path, Mode mode = Mode::kMemory);

  const std::string& path() const;
  const ClipIndex& index() const;
  int64_t size() const;          // clips
  int64_t total_frames() const;  // rows of /motion
  int persons() const;           // P of the frame array
  bool in_memory() const;
  // The whole frame array [N_frames, P, 262]; kMemory only.
  const torch::Tensor& all() const;
  // Frames [len, P, 262] of clip `i` starting at `start` (len -1: to the end).
  torch::Tensor frames(int64_t i, int64_t start = 0, int64_t len = -1) const;
  motion::Clip clip(int64_t i) const;  // motion [T, persons_i, 262]
  // Root attribute as text; `fallback` when absent.
  std::string attr(const std::string& name, const std::string& fallback = "") const;
  const std::map<std::string, std::string>& attrs() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vimo::data

// Training metrics: one JSON object per line in metrics.jsonl and TensorBoard scalar event files.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <string>

namespace vimo::core {

// Writes TensorBoard event files (TFRecord framing, masked CRC32C, hand-encoded Event protos).
class EventWriter {
 public:
  explicit EventWriter(const std::string& dir);
  void scalar(const std::string& tag, double value, int64_t step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void record(const std::string& payload);
  std::string path_;
  std::ofstream out_;
};

class MetricsWriter {
 public:
  // Appends to <run_dir>/metrics.jsonl; lines from steps after `resume_step` (left by an
  // interrupted run) are dropped first so the file matches the resumed history.
  MetricsWriter(const std::string& run_dir, int64_t resume_step = -1);
  void write(int64_t step, const std::map<std::string, double>& values, const std::string& split = "train");
  void flush();

 private:
  std::ofstream jsonl_;
  EventWriter events_;
};

uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace vimo::core

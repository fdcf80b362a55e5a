// Progress display for long non-training work: a redrawn bar on a terminal, periodic plain lines
// otherwise (logs, CI).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace vimo::core {

class Progress {
 public:
  // `total` 0 means unknown. Plain-line mode prints at most every `interval_s` seconds.
  Progress(std::string label, int64_t total, double interval_s = 10.0);
  ~Progress();
  void add(int64_t n = 1);
  void finish();
  static bool is_terminal();

 private:
  void draw(bool final);
  std::string label_;
  int64_t total_, done_ = 0;
  double interval_s_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace vimo::core

// Progress bar / periodic progress lines.
#include "vimo/core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "vimo/core/log.h"

namespace vimo::core {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

bool Progress::is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, int64_t total, double interval_s)
    : label_(std::move(label)), total_(total), interval_s_(interval_s), tty_(is_terminal()),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::add(int64_t n) {
  done_ += n;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (since >= (tty_ ? 0.1 : interval_s_)) {
    last_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = el > 0 ? done_ / el : 0;
  std::string text = label_ + " " + std::to_string(done_);
  if (total_ > 0) {
    text += "/" + std::to_string(total_);
    const double frac = std::min(1.0, static_cast<double>(done_) / total_);
    if (tty_) {
      const int w = 30, fill = static_cast<int>(frac * w);
      text = label_ + " [" + std::string(fill, '#') + std::string(w - fill, '.') + "] " +
             std::to_string(done_) + "/" + std::to_string(total_);
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, " %5.1f%%", 100 * frac);
    text += pct;
    if (!final && rate > 0) text += " eta " + format_duration((total_ - done_) / rate);
  }
  char r[48];
  std::snprintf(r, sizeof r, " %.1f/s %s", rate, format_duration(el).c_str());
  text += r;
  if (tty_) {
    std::cerr << "\r\033[K" << text << (final ? "\n" : "") << std::flush;
  } else {
    log::info(text);
  }
}

}  // namespace vimo::core

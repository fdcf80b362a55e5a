// Logging to the console and, once a run directory is known, to <run_dir>/log.txt.
#pragma once
#include <sstream>
#include <string>

namespace vimo::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
// Adds <path> as a second sink (appending, so a resumed run keeps its history).
void open_file(const std::string& path);
void close_file();
void write(Level level, const std::string& msg);

template <class... A> std::string cat(const A&... a) {
  std::ostringstream s;
  (s << ... << a);
  return s.str();
}
template <class... A> void debug(const A&... a) { if (level() <= Level::kDebug) write(Level::kDebug, cat(a...)); }
template <class... A> void info(const A&... a) { if (level() <= Level::kInfo) write(Level::kInfo, cat(a...)); }
template <class... A> void warn(const A&... a) { write(Level::kWarn, cat(a...)); }
template <class... A> void error(const A&... a) { write(Level::kError, cat(a...)); }

}  // namespace vimo::log

// Console + file logger with timestamps; thread-safe.
#include "vimo/core/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>

namespace vimo::log {
namespace {
std::mutex g_mu;
Level g_level = Level::kInfo;
std::ofstream g_file;

std::string stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms));
  return out;
}
const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    default: return "error";
  }
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void open_file(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_file.is_open()) g_file.close();
  g_file.open(path, std::ios::app);
}
void close_file() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_file.is_open()) g_file.close();
}

void write(Level level, const std::string& msg) {
  if (level < g_level) return;
  const std::string line = "[" + stamp() + "] [" + name(level) + "] " + msg + "\n";
  std::lock_guard<std::mutex> lock(g_mu);
  std::cerr << line << std::flush;
  if (g_file.is_open()) g_file << line << std::flush;
}

}  // namespace vimo::log

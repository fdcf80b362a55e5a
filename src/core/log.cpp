// The logger on spdlog: a stderr sink and an optional file sink, "[time] [level] [rank r] message".
// This unit includes no LibTorch header and is built as its own library (vimo_log): Debian's spdlog
// is built on fmt 9, and the torch wheel puts its fmt 12 headers first on vimo's include path.
#include "vimo/core/log.h"
#include "vimo/core/log_setup.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace vimo::log {
namespace {

struct State {
  std::mutex mu;
  std::atomic<int> level{static_cast<int>(Level::kInfo)};
  int rank = 0, world = 1;
  bool all_ranks = false;
  std::shared_ptr<spdlog::sinks::stderr_sink_mt> console = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file;
  std::shared_ptr<spdlog::logger> logger;
  State() {
    console->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %v");
    logger = std::make_shared<spdlog::logger>("vimo", console);
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::trace);
  }
};

State& st() {
  static State s;
  return s;
}

const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    default: return "error";
  }
}

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    default: return spdlog::level::err;
  }
}

// Console: every line of rank 0 (or of every rank with all_ranks), warnings and errors of the others.
void apply_sink_levels(State& s) {
  s.console->set_level(s.rank == 0 || s.all_ranks ? spdlog::level::trace : spdlog::level::warn);
}

}  // namespace

void set_level(Level level) { st().level = static_cast<int>(level); }
Level level() { return static_cast<Level>(st().level.load()); }

void open_file(const std::string& path) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<spdlog::sink_ptr> sinks{s.console};
  s.file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
  s.file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] %v");
  sinks.push_back(s.file);
  auto lg = std::make_shared<spdlog::logger>("vimo", sinks.begin(), sinks.end());
  lg->set_level(spdlog::level::trace);
  lg->flush_on(spdlog::level::trace);
  s.logger = lg;
}

void close_file() {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.file.reset();
  auto lg = std::make_shared<spdlog::logger>("vimo", s.console);
  lg->set_level(spdlog::level::trace);
  lg->flush_on(spdlog::level::trace);
  s.logger = lg;
}

void set_rank(int rank, int world) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.rank = rank;
  s.world = world;
  apply_sink_levels(s);
}

void set_all_ranks(bool all) {
  auto& s = st();
  std::lock_guard<std::mutex> lock(s.mu);
  s.all_ranks = all;
  apply_sink_levels(s);
}

void write(Level lv, const std::string& msg) {
  auto& s = st();
  if (static_cast<int>(lv) < s.level.load()) return;
  std::shared_ptr<spdlog::logger> lg;
  std::string line = std::string("[") + name(lv) + "] ";
  {
    std::lock_guard<std::mutex> lock(s.mu);
    lg = s.logger;
    if (s.world > 1) line += "[rank " + std::to_string(s.rank) + "] ";
  }
  line += msg;
  lg->log(to_spd(lv), "{}", line);
}

}  // namespace vimo::log

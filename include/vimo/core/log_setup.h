// Where log lines go on a multi-rank run (the logging calls are in core/log.h; spdlog is the backend,
// src/core/log.cpp). Every line carries "[rank r]"; the console shows rank 0's lines and the warnings
// and errors of every rank, or every line of every rank with set_all_ranks(true)
// (dist.log_all_ranks); each rank has its own log file in the run directory.
#pragma once

namespace vimo::log {

// This process's place in a multi-rank run (world 1: no prefix, every line on the console).
void set_rank(int rank, int world);
void set_all_ranks(bool all);

}  // namespace vimo::log

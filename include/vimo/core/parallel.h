// Runs body(i) for i in [0, count) on a pool of CPU threads, items claimed in order, LibTorch's own
// intra-op threads set to 1 meanwhile (parallel over items instead); the first exception stops the
// remaining items and is rethrown on the caller's thread after every worker has joined.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

namespace vimo::core {

// threads <= 0: all hardware threads. body must be safe to call concurrently for distinct i.
template <class F>
void parallel_items(int64_t count, int threads, F&& body) {
  if (count <= 0) return;
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::exception_ptr failure;
  auto work = [&] {
    try {
      c10::NoGradGuard ng;
      for (int64_t i; (i = next++) < count;) body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = std::current_exception();
      next = count;
    }
  };
  const int old_threads = at::get_num_threads();
  at::set_num_threads(1);
  std::vector<std::thread> pool;
  for (int k = 0; k < std::min<int64_t>(n, count); ++k) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  at::set_num_threads(old_threads);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace vimo::core

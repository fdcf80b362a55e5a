// Background production of numbered items (batches) by worker threads into a bounded queue,
// handed out strictly in index order so the result does not depend on thread timing.
#pragma once
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace vimo::data {

template <class T>
class Prefetcher {
 public:
  using Make = std::function<T(int64_t index)>;
  // `workers` 0 produces each item in next() on the caller's thread. At most `capacity` items
  // are produced ahead of the consumer.
  Prefetcher(Make make, int workers, int capacity)
      : make_(std::move(make)), workers_(workers), capacity_(std::max(1, capacity)) {}
  ~Prefetcher() { stop(); }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // (Re)starts production at `first`; items produced before are dropped.
  void start(int64_t first) {
    stop();
    next_claim_ = next_out_ = first;
    ready_.clear();
    error_ = nullptr;
    stop_ = false;
    for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  }

  // The item with the next index; rethrows a worker's exception for that index.
  T next() {
    if (workers_ == 0) return make_(next_out_++);
    std::unique_lock<std::mutex> lock(mu_);
    produced_.wait(lock, [&] { return ready_.count(next_out_) || (error_ && error_index_ == next_out_); });
    auto it = ready_.find(next_out_);
    if (it == ready_.end()) std::rethrow_exception(error_);
    T item = std::move(it->second);
    ready_.erase(it);
    ++next_out_;
    consumed_.notify_all();
    return item;
  }

  // Stops and joins the workers; safe to call twice.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    consumed_.notify_all();
    produced_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void work() {
    for (;;) {
      int64_t idx;
      {
        std::unique_lock<std::mutex> lock(mu_);
        consumed_.wait(lock, [&] { return stop_ || error_ || next_claim_ < next_out_ + capacity_; });
        if (stop_ || error_) return;
        idx = next_claim_++;
      }
      try {
        T item = make_(idx);
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        ready_.emplace(idx, std::move(item));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        // Items before a failed one are still delivered; the failure surfaces at its own index.
        if (!error_ || idx < error_index_) {
          error_ = std::current_exception();
          error_index_ = idx;
        }
      }
      produced_.notify_all();
    }
  }

  Make make_;
  int workers_, capacity_;
  std::mutex mu_;
  std::condition_variable produced_, consumed_;
  std::map<int64_t, T> ready_;
  int64_t next_claim_ = 0, next_out_ = 0, error_index_ = -1;
  bool stop_ = true;
  std::exception_ptr error_;
  std::vector<std::thread> threads_;
};

}  // namespace vimo::data

// The process group every data-parallel step talks to: rank, world size and the few collectives the
// trainer and the models need. The default is one process (every collective is the identity); the
// c10d implementation (Gloo/NCCL, train/distributed.h) is installed by a training recipe's set-up, so
// library code below train/ (the RQ-VAE's EMA codebooks) reaches the same group through process_group().
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace vimo::core {

// Items [lo, hi) of n for rank `rank` of `count`: the contiguous slice of every data-parallel split.
inline std::pair<int64_t, int64_t> shard_range(int64_t n, int64_t rank, int64_t count) {
  return {rank * n / count, (rank + 1) * n / count};
}

// Runs [a, b) of consecutive `tensors` of one dtype and device, about `bucket_bytes` each: a tensor
// larger than that is a run of its own, and 0 gives one tensor per run.
inline std::vector<std::pair<size_t, size_t>> bucket_ranges(const std::vector<torch::Tensor>& tensors,
                                                            int64_t bucket_bytes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t a = 0;
  while (a < tensors.size()) {
    size_t b = a + 1;
    int64_t bytes = static_cast<int64_t>(tensors[a].nbytes());
    while (bucket_bytes > 0 && b < tensors.size() && tensors[b].scalar_type() == tensors[a].scalar_type() &&
           tensors[b].device() == tensors[a].device() && bytes + static_cast<int64_t>(tensors[b].nbytes()) <= bucket_bytes)
      bytes += static_cast<int64_t>(tensors[b++].nbytes());
    out.emplace_back(a, b);
    a = b;
  }
  return out;
}

// Runs `collective` on flat buckets of consecutive tensors (bucket_ranges; a single tensor is its own
// bucket, in place), and copies the results back.
inline void for_each_bucket(std::vector<torch::Tensor>& tensors, int64_t bucket_bytes,
                            const std::function<void(torch::Tensor&)>& collective) {
  for (const auto& [a, b] : bucket_ranges(tensors, bucket_bytes)) {
    std::vector<torch::Tensor> flat;
    for (size_t k = a; k < b; ++k) flat.push_back(tensors[k].detach().reshape({-1}));
    auto bucket = b - a == 1 ? tensors[a].detach().contiguous().reshape({-1}) : torch::cat(flat);
    collective(bucket);
    int64_t off = 0;
    for (size_t k = a; k < b; ++k) {
      const int64_t n = tensors[k].numel();
      tensors[k].detach().copy_(bucket.narrow(0, off, n).view_as(tensors[k]));
      off += n;
    }
  }
}

// A collective that was started and not yet waited for.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Blocks until the result is in the tensor the collective was started on (a failure: a named error).
  virtual void wait() {}
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  virtual int local_rank() const { return 0; }
  bool is_main() const { return rank() == 0; }
  bool distributed() const { return world_size() > 1; }
  // In place: the element-wise sum over ranks (every rank gets it).
  virtual void sum(torch::Tensor& /*t*/) {}
  // Starts the element-wise sum of `t` over ranks; the result is in `t` after wait(). Collectives
  // start in the order of the calls, which every rank must make alike.
  virtual std::unique_ptr<PendingCollective> sum_async(torch::Tensor& t) {
    sum(t);
    return std::make_unique<PendingCollective>();
  }
  // In place: the element-wise maximum over ranks.
  virtual void max(torch::Tensor& /*t*/) {}
  // In place: rank `root`'s tensor on every rank.
  virtual void broadcast(torch::Tensor& /*t*/, int /*root*/ = 0) {}
  virtual void barrier() {}
  // Whether `v` is the same on every rank (one max over v and -v).
  bool same_everywhere(double v) {
    auto t = torch::tensor({v, -v}, torch::kFloat64);
    max(t);
    return t[0].item<double>() == v && -t[1].item<double>() == v;
  }
};

namespace detail {
inline std::shared_ptr<ProcessGroup>& process_group_slot() {
  static std::shared_ptr<ProcessGroup> g = std::make_shared<ProcessGroup>();
  return g;
}
}  // namespace detail

// The group of this process (single-process until set_process_group is called).
inline ProcessGroup& process_group() { return *detail::process_group_slot(); }
inline std::shared_ptr<ProcessGroup> process_group_ptr() { return detail::process_group_slot(); }
inline void set_process_group(std::shared_ptr<ProcessGroup> g) {
  detail::process_group_slot() = g ? std::move(g) : std::make_shared<ProcessGroup>();
}

}  // namespace vimo::core

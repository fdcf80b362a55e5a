// The process group every data-parallel step talks to: rank, world size and the few collectives the
// trainer and the models need. The default is one process (every collective is the identity); the
// c10d implementation (Gloo/NCCL, train/distributed.h) is installed by a training recipe's set-up, so
// library code below train/ (the RQ-VAE's EMA codebooks) reaches the same group through process_group().
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace vimo::core {

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
  // In place: the element-wise maximum over ranks.
  virtual void max(torch::Tensor& /*t*/) {}
  // In place: rank `root`'s tensor on every rank.
  virtual void broadcast(torch::Tensor& /*t*/, int /*root*/ = 0) {}
  virtual void barrier() {}
  // Gradients summed over ranks in place, in flat buckets of about `bucket_bytes` (then scaled by the
  // caller). Tensors without a gradient are skipped on every rank alike (the same parameters).
  virtual void sum_gradients(std::vector<torch::Tensor>& /*params*/, int64_t /*bucket_bytes*/) {}
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

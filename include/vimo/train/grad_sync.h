// Data-parallel gradient sums in fixed buckets. With overlap, autograd hooks start each bucket's sum as
// soon as the last of its gradients is accumulated, while the backward pass goes on; buckets start in
// their fixed order on every rank (a bucket whose gradients are ready waits for the ones before it), so
// all ranks issue the same collectives in the same order. The rest start after backward.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "vimo/core/process_group.h"

namespace vimo::train {

class GradientSync {
 public:
  // `params`: the trainable parameters, the same list on every rank. Buckets hold consecutive
  // parameters of one dtype and device, in reverse order (the order backward produces them), of about
  // `bucket_bytes` each (0: one per parameter).
  GradientSync(std::vector<torch::Tensor> params, core::ProcessGroup& group, int64_t bucket_bytes, bool overlap);
  ~GradientSync();  // removes the hooks
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // Call before the backward pass of the step's last micro-batch: from then on, hooks start buckets.
  void arm();
  // After the last backward pass: starts the buckets not started yet, sums `stats` (float64 [k], on the
  // host) over ranks together with each parameter's has-a-gradient flag, then waits for the buckets and
  // writes the sums into the gradients. A parameter without a gradient on some rank counts as zero
  // there; one that no rank gave a gradient keeps none (AdamW then leaves it alone, as on one process).
  void finish(torch::Tensor& stats);

  // Called by the hooks: params_[i]'s gradient is complete for this step.
  void on_grad(size_t i);

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Of the last finished step: how many buckets started inside the backward pass.
  int64_t started_in_backward() const { return started_in_backward_; }
  // The parameter indices of each bucket, in start order.
  std::vector<std::vector<size_t>> layout() const;

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into params_
    int64_t numel = 0;
    size_t ready = 0;
    torch::Tensor flat;  // [numel] while in flight
    std::unique_ptr<core::PendingCollective> work;
  };
  void start(Bucket& b);  // copies the bucket's gradients into one flat tensor, starts its sum

  std::vector<torch::Tensor> params_;
  core::ProcessGroup& group_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<char> marked_;
  size_t next_ = 0;  // the next bucket to start
  bool armed_ = false;
  bool hooked_ = false;
  int64_t started_now_ = 0;
  int64_t started_in_backward_ = 0;
  std::mutex mu_;  // hooks may run on autograd's device threads
};

}  // namespace vimo::train

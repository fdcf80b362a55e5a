// The seam for data-parallel training: the trainer talks to a ProcessGroup only. The single-process
// group here does nothing; a c10d-backed group (NCCL/Gloo, launched by torchrun or Slurm) slots in.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vimo::train {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const { return 0; }
  virtual int world_size() const { return 1; }
  bool is_main() const { return rank() == 0; }
  // Averages gradients over ranks, in place, after the last micro-batch of a step.
  virtual void average_gradients(std::vector<torch::Tensor>& /*params*/) {}
  // Averages an arbitrary tensor in place (EMA codebook statistics, metrics).
  virtual void average(torch::Tensor& /*t*/) {}
  // Rank 0's tensor is copied to every rank (initial weights).
  virtual void broadcast(torch::Tensor& /*t*/) {}
  virtual void barrier() {}
};

}  // namespace vimo::train

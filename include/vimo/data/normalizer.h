// Feature statistics (mean, std over a packed train split) and the normalizer built on them.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "vimo/data/packed.h"

namespace vimo::data {

struct FeatureStats {
  torch::Tensor mean, std;  // [262] float32
  int64_t frames = 0;       // person-frames the statistics were taken over
};

// Mean and std over every present person's frames (both persons together), in float64;
// std is floored at `std_floor` so constant channels (e.g. contacts never set) stay finite.
FeatureStats compute_stats(const PackedDataset& ds, double std_floor);
// stats.safetensors: tensors "mean" and "std" [262] float32; `metadata` is stored alongside.
void save_stats(const std::string& path, const FeatureStats& s,
                const std::map<std::string, std::string>& metadata = {});

// (x - mean) / std over the last dimension; works on any [..., 262] tensor and device.
class Normalizer {
 public:
  Normalizer() = default;
  Normalizer(torch::Tensor mean, torch::Tensor std);
  // Reads stats.safetensors ("mean", "std").
  static Normalizer load(const std::string& path);
  // The identity (mean 0, std 1): for raw features.
  static Normalizer identity();
  torch::Tensor normalize(const torch::Tensor& x) const;
  torch::Tensor denormalize(const torch::Tensor& x) const;
  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& std() const { return std_; }
  bool defined() const { return mean_.defined(); }

 private:
  torch::Tensor mean_, std_;
};

}  // namespace vimo::data

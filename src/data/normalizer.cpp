// Feature statistics over a packed split and the normalizer that applies them.
#include "vimo/data/normalizer.h"

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"

namespace vimo::data {

using motion::kFeatureDim;

FeatureStats compute_stats(const PackedDataset& ds, double std_floor) {
  std::vector<double> sum(kFeatureDim, 0.0), sq(kFeatureDim, 0.0);
  int64_t count = 0;
  const auto& ix = ds.index();
  // Shifting by the first frame keeps the float64 sums of squares well conditioned.
  std::vector<double> shift(kFeatureDim, 0.0);
  bool have_shift = false;
  for (int64_t i = 0; i < ix.size(); ++i) {
    auto f = ds.frames(i).contiguous();  // [T, P, 262]
    const float* p = f.data_ptr<float>();
    const int64_t T = f.size(0), P = f.size(1);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t q = 0; q < ix.persons[i]; ++q) {
        const float* row = p + (t * P + q) * kFeatureDim;
        if (!have_shift) {
          for (int c = 0; c < kFeatureDim; ++c) shift[c] = row[c];
          have_shift = true;
        }
        for (int c = 0; c < kFeatureDim; ++c) {
          const double d = row[c] - shift[c];
          sum[c] += d;
          sq[c] += d * d;
        }
        ++count;
      }
  }
  VIMO_CHECK(count > 1,
             ::vimo::log::cat("cannot compute feature statistics over '", ds.path(), "': it holds ", count, " frames"));
  FeatureStats s;
  s.mean = torch::empty({kFeatureDim}, torch::kFloat32);
  s.std = torch::empty({kFeatureDim}, torch::kFloat32);
  for (int c = 0; c < kFeatureDim; ++c) {
    const double m = sum[c] / count;
    const double var = std::max(0.0, sq[c] / count - m * m);
    s.mean[c] = m + shift[c];
    s.std[c] = std::max(std::sqrt(var), std_floor);
  }
  s.frames = count;
  return s;
}

void save_stats(const std::string& path, const FeatureStats& s, const std::map<std::string, std::string>& metadata) {
  auto md = metadata;
  md["frames"] = std::to_string(s.frames);
  core::save_safetensors(path, {{"mean", s.mean}, {"std", s.std}}, md);
}

Normalizer::Normalizer(torch::Tensor mean, torch::Tensor std) {
  VIMO_CHECK(mean.dim() == 1 && mean.size(0) == kFeatureDim && std.dim() == 1 && std.size(0) == kFeatureDim,
             ::vimo::log::cat("normalizer: mean and std must be [262], got ", mean.sizes(), " and ", std.sizes()));
  VIMO_CHECK((std > 0).all().item<bool>() && torch::isfinite(std).all().item<bool>() &&
                 torch::isfinite(mean).all().item<bool>(),
             "normalizer: std must be positive and finite and mean finite");
  mean_ = mean.to(torch::kFloat32).contiguous();
  std_ = std.to(torch::kFloat32).contiguous();
}

Normalizer Normalizer::load(const std::string& path) {
  auto st = core::SafeTensors::open(path);
  for (const char* name : {"mean", "std"})
    VIMO_CHECK(st.contains(name), ::vimo::log::cat("stats file '", path, "' has no tensor '", name,
                                                   "'; re-run `vimo data prepare` to write it"));
  try {
    return Normalizer(st.get("mean").clone(), st.get("std").clone());
  } catch (const Error& e) {
    throw Error("stats file '" + path + "': " + e.what());
  }
}

Normalizer Normalizer::identity() { return Normalizer(torch::zeros({kFeatureDim}), torch::ones({kFeatureDim})); }

torch::Tensor Normalizer::normalize(const torch::Tensor& x) const {
  VIMO_CHECK(defined(), "normalizer used before stats were loaded");
  VIMO_CHECK(x.size(-1) == kFeatureDim, ::vimo::log::cat("normalize: expected [..., 262], got ", x.sizes()));
  return (x - mean_.to(x.device(), x.scalar_type())) / std_.to(x.device(), x.scalar_type());
}

torch::Tensor Normalizer::denormalize(const torch::Tensor& x) const {
  VIMO_CHECK(defined(), "normalizer used before stats were loaded");
  VIMO_CHECK(x.size(-1) == kFeatureDim, ::vimo::log::cat("denormalize: expected [..., 262], got ", x.sizes()));
  return x * std_.to(x.device(), x.scalar_type()) + mean_.to(x.device(), x.scalar_type());
}

}  // namespace vimo::data

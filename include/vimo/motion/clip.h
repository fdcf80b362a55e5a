// A motion clip as it flows between readers, the synthetic generator, packing and loaders.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace vimo::motion {

constexpr int kNumJoints = 22;
constexpr int kFeatureDim = 262;  // per person and frame; layout in DESIGN.md "Motion representation"
constexpr int kMinClipFrames = 16;
constexpr int kMaxClipFrames = 300;
constexpr double kFps = 30.0;

struct Clip {
  std::string id;
  torch::Tensor motion;               // [T, P, 262] float32, P = 2 (or 1 for single-person data)
  std::vector<std::string> captions;  // may be empty
};

}  // namespace vimo::motion

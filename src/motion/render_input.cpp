// Turns a clip file into joints for the renderers (features or joints, one or two persons).
#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/clip.h"
#include "vimo/motion/features.h"
#include "vimo/motion/render.h"

namespace vimo::motion {

torch::Tensor load_render_input(const std::string& path) {
  auto t = core::load_npy(path).to(torch::kFloat32);
  if (t.dim() >= 2 && t.size(-1) == kFeatureDim) {
    if (t.dim() == 2) t = t.unsqueeze(1);
    VIMO_CHECK(t.dim() == 3, path + ": features must be [T, P, 262] or [T, 262], got " + c10::str(t.sizes()));
    check_finite(t, path);
    return features_to_joints(t).to(torch::kFloat32);
  }
  if (t.dim() == 3 && t.size(1) == kNumJoints && t.size(2) == 3) t = t.unsqueeze(1);
  VIMO_CHECK(t.dim() == 4 && t.size(2) == kNumJoints && t.size(3) == 3,
             path + ": expected features [T, P, 262] or joints [T, P, 22, 3], got " + c10::str(t.sizes()) +
                 "; convert other data with `vimo motion from-joints` first");
  check_finite(t, path);
  return t;
}

}  // namespace vimo::motion

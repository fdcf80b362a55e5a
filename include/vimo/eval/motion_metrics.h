// Joint-space metrics: MPJPE and PA-MPJPE (mm) for reconstructions, foot skating and inter-person
// penetration for generated pairs. Joints are metres, Y up, floor at y = 0 (DESIGN.md).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vimo::eval {

// Mean per-joint position error in millimetres over every joint of every pose.
// pred, gt: [..., J, 3] of the same shape (metres).
double mpjpe_mm(const torch::Tensor& pred, const torch::Tensor& gt);

// MPJPE after aligning each pose [J, 3] of `pred` to `gt` by the least-squares similarity
// transform (rotation without reflection, uniform scale, translation; Umeyama / Procrustes).
double pa_mpjpe_mm(const torch::Tensor& pred, const torch::Tensor& gt);

struct FootSkatingOptions {
  double fps = 30.0;
  double height_m = 0.05;   // a foot joint below this height (in both frames) is in contact
  double speed_m_s = 0.5;   // horizontal (XZ) speed above which a foot in contact is skating
  std::vector<int> joints;  // foot joints; empty: l_foot and r_foot of the 22-joint body
};

// Fraction of frame transitions t -> t+1 in which at least one foot joint is in contact in both
// frames and moves horizontally faster than `speed_m_s`. joints: [T, J, 3] or [T, P, J, 3]
// (P persons: the ratio is over all P * (T - 1) person-transitions).
double foot_skating_ratio(const torch::Tensor& joints, const FootSkatingOptions& o = {});

struct PenetrationOptions {
  double radius_m = 0.05;  // every bone is a capsule of this radius around its parent-child segment
};

struct Penetration {
  double ratio = 0;     // fraction of frames where some capsule of A overlaps some capsule of B
  double depth_mm = 0;  // mean over those frames of the deepest overlap, 2r - segment distance
};

// Capsule overlap between two bodies over time. a, b: [T, 22, 3] (the 22-joint body's bones).
Penetration penetration(const torch::Tensor& a, const torch::Tensor& b, const PenetrationOptions& o = {});

}  // namespace vimo::eval

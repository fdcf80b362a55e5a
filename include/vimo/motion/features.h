// The InterHuman 262-d representation (InterGen's processing): joints (+ local rotations) of one or
// two persons -> [T-1, P, 262] features in the pair's canonical frame, and features -> joints.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "vimo/motion/clip.h"

namespace vimo::motion {

// Channel layout of one person's 262 floats (docs/motion.md).
constexpr int kPosChannels = 0;        // 22 x 3 joint positions, canonical frame
constexpr int kVelChannels = 66;       // 22 x 3 velocities: next frame minus this frame
constexpr int kRotChannels = 132;      // 21 x 6 local rotations of joints 1..21 (6D, matrix rows)
constexpr int kContactChannels = 258;  // l_ankle, l_foot, r_ankle, r_foot in {0, 1}

struct FeatureOptions {
  char up = 'y';        // up axis of the input joints: 'y', or 'z' (converted as InterGen does)
  double fps = kFps;    // input frame rate; other rates are resampled to 30 fps
  // InterGen's foot-contact test: squared per-frame displacement below the threshold and height
  // above the floor below 0.12 m (ankles) / 0.05 m (toes).
  double contact_threshold = 0.001;
  double ankle_height = 0.12, toe_height = 0.05;
  std::string name = "clip";  // names the clip in error messages
};

// The canonical transform of a pair: x' = R_y(yaw) (x - (root_x, floor_p, root_z)).
struct CanonicalFrame {
  double yaw = 0;               // radians about +Y; turns person A's first-frame facing onto +Z
  double root_x = 0, root_z = 0;  // person A's first-frame pelvis (after the up-axis conversion)
  std::vector<double> floor;    // per person: its lowest joint height over the clip
};

// Z-up -> Y-up as InterGen's trans_matrix does: (x, y, z) -> (x, z, -y). [..., 3]
torch::Tensor z_up_to_y_up(const torch::Tensor& p);
torch::Tensor y_up_to_z_up(const torch::Tensor& p);  // the inverse
// Linear resampling along dim 0 from src to dst frames per second (the first frame is kept).
torch::Tensor resample(const torch::Tensor& x, double src_fps, double dst_fps);

// joints: P tensors [T, 22, 3] (Y up unless opts.up = 'z', metres) -> canonical joints [T, P, 22, 3]
// float64, after the up-axis conversion. Throws on NaN/inf, unequal lengths or a degenerate pose.
torch::Tensor canonicalize(const std::vector<torch::Tensor>& joints, const FeatureOptions& opts = {},
                           CanonicalFrame* frame = nullptr);

// Foot contacts of canonical joints [T, 22, 3] -> [T-1, 4] float64 in {0, 1}.
torch::Tensor foot_contacts(const torch::Tensor& canonical, const FeatureOptions& opts = {});

// joints: P (1 to 8: pairs, single persons, groups) tensors [T, 22, 3]; rotations: empty (found by inverse kinematics) or P tensors,
// each [T, 21, 6] (6D of joints 1..21) or [T, 22, 3, 3] / [T, 21, 3, 3] local matrices.
// Returns [T'-1, P, 262] float32, T' the frame count at 30 fps.
torch::Tensor joints_to_features(const std::vector<torch::Tensor>& joints,
                                 const std::vector<torch::Tensor>& rotations = {},
                                 const FeatureOptions& opts = {}, CanonicalFrame* frame = nullptr);

// A [T, P, 262] clip played `factor` times slower (> 1) or faster (< 1): its joints (T + 1 frames, the
// last one from the last velocities) and rotations taken as recorded at 30 / factor fps and passed
// through joints_to_features, so positions, rotations, velocities and foot contacts are those of the
// retimed skeleton. Returns [T', P, 262] float32, T' ~ T * factor.
torch::Tensor retime_features(const torch::Tensor& features, double factor);

// Features [..., 262] -> joints [..., 22, 3] (the position channels).
torch::Tensor features_to_joints(const torch::Tensor& features);
// Features [..., 262] -> local rotations of joints 1..21 as matrices [..., 21, 3, 3].
torch::Tensor features_to_rotations(const torch::Tensor& features);

// Throws vimo::Error naming `name` and the first bad frame when `t` holds NaN or inf.
void check_finite(const torch::Tensor& t, const std::string& name);

}  // namespace vimo::motion

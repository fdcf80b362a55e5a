// Augmentations applied when packing: left/right mirroring (motion and caption words together)
// and person-order swap (B becomes A, re-canonicalized).
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "vimo/motion/clip.h"

namespace vimo::data {

// Mirrors 262-d features across the YZ plane: left/right joints swapped, X of positions and
// velocities negated, 6D rotations conjugated by diag(-1, 1, 1), foot contacts swapped.
// The canonical frame is preserved (A's root stays at the origin facing +Z). [..., 262] -> [..., 262]
torch::Tensor mirror_features(const torch::Tensor& x);
// left <-> right, clockwise <-> counterclockwise, ... keeping capitalisation.
std::string mirror_caption(const std::string& text);

// A rigid move on the floor plane: p -> R (p - origin) + shift, R = [[c, -s], [s, c]] acting on (x, z).
struct PlanarTransform {
  double c = 1, s = 0, ox = 0, oz = 0, tx = 0, tz = 0;
  PlanarTransform inverse() const { return {c, -s, tx, tz, ox, oz}; }
  static PlanarTransform rotation_about(double angle, double x, double z) {
    return {std::cos(angle), std::sin(angle), x, z, x, z};
  }
};
// The move that puts `person`'s root at the XZ origin facing +Z in `frame` (facing = up x (r_hip - l_hip)).
PlanarTransform canonical_transform(const torch::Tensor& x, int64_t person = 0, int64_t frame = 0);
// Applies `t` to the positions and velocities of a [T, P, 262] clip (local rotations and contacts
// are unchanged).
torch::Tensor apply_transform(const torch::Tensor& x, const PlanarTransform& t);

// Moves a [T, P, 262] clip rigidly (rotation about Y, XZ translation; local rotations and contacts
// are unchanged) so the first person's frame-0 root is at the XZ origin facing +Z.
torch::Tensor canonicalize(const torch::Tensor& x);
// Exchanges the persons of a [T, 2, 262] clip and moves the pair by the rigid Y rotation and XZ
// translation that puts the new first person's first-frame root at the origin facing +Z.
torch::Tensor swap_persons(const torch::Tensor& x);
// "first person" <-> "second person", "person A" <-> "person B", "the former" <-> "the latter", ...
std::string swap_caption(const std::string& text);

// Speed: a clip played kRetimeFactor times slower or faster (motion::retime_features) and its caption,
// "<caption> They move slowly." / "... quickly." (the speed edits of `vimo data conversations` and the
// evaluator's `data.retime` augmentation share the words).
constexpr double kRetimeFactor = 1.5;
std::string retimed_caption(const std::string& caption, bool slower);

// Whole-clip forms; the id gets a suffix ("#mirror", "#swap").
motion::Clip mirror_clip(const motion::Clip& c);
motion::Clip swap_clip(const motion::Clip& c);

}  // namespace vimo::data

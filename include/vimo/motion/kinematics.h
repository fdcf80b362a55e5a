// Forward kinematics of the 22-joint body from local rotations, and inverse kinematics that finds
// local rotations for data that has joint positions only (BVH mappings, HumanML3D, synthetic).
#pragma once
#include <torch/torch.h>

namespace vimo::motion {

// local_rot [..., 22, 3, 3]: joint 0 is the pelvis's world orientation, joint j > 0 is relative to
// its parent (SMPL convention: rotation j turns the bones below joint j). root_pos [..., 3] places the
// pelvis. offsets [22, 3] or [..., 22, 3]: each joint's offset from its parent in the rest pose
// (entry 0 unused). Returns joints [..., 22, 3]; `global_rot` (when given) gets [..., 22, 3, 3].
torch::Tensor forward_kinematics(const torch::Tensor& local_rot, const torch::Tensor& root_pos,
                                 const torch::Tensor& offsets, torch::Tensor* global_rot = nullptr);

// joints [..., 22, 3] -> local rotations [..., 22, 3, 3] in the convention above. Joints with several
// children (pelvis, spine3) get the best-fit rotation of their children's rest offsets (Kabsch);
// joints with one child get the smallest swing from the parent's frame (no twist); end joints
// (head, wrists, toes) stay at identity. FK with these rotations and `body_offsets(joints)`
// reproduces the single-child bones exactly. `rest` defaults to rest_offsets().
torch::Tensor inverse_kinematics(const torch::Tensor& joints, const torch::Tensor& rest = {});

// Per-body offsets [22, 3]: rest directions scaled to the mean bone lengths of joints [T, 22, 3].
torch::Tensor body_offsets(const torch::Tensor& joints);

}  // namespace vimo::motion

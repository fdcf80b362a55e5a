// The 22-joint SMPL body used everywhere in vimo: joint names, parents, rest offsets (metres, Y up,
// body facing +Z, its left side towards +X), kinematic chains and the joints feature code needs.
#pragma once
#include <torch/torch.h>

#include <array>
#include <string>

#include "vimo/motion/clip.h"

namespace vimo::motion {

enum Joint : int {
  kPelvis = 0, kLeftHip, kRightHip, kSpine1, kLeftKnee, kRightKnee, kSpine2, kLeftAnkle, kRightAnkle,
  kSpine3, kLeftFoot, kRightFoot, kNeck, kLeftCollar, kRightCollar, kHead, kLeftShoulder,
  kRightShoulder, kLeftElbow, kRightElbow, kLeftWrist, kRightWrist
};

extern const std::array<const char*, kNumJoints> kJointNames;  // "pelvis", "l_hip", ...
extern const std::array<int, kNumJoints> kParents;             // kParents[0] = -1; parent < child
// Rest offset of each joint from its parent (joint 0: the pelvis above the floor-level origin).
// Rounded from the SMPL neutral template's joint locations; bodies of other sizes pass their own.
extern const std::array<std::array<double, 3>, kNumJoints> kRestOffsets;

// Chains from the pelvis outwards (right leg, left leg, spine to head, right arm, left arm).
extern const std::array<std::array<int, 5>, 5> kChains;
// Left/right partner of each joint (itself on the midline); for mirroring.
extern const std::array<int, kNumJoints> kMirror;

// Joints InterGen uses to find the facing direction: across = r_hip - l_hip.
constexpr int kFaceRightHip = kRightHip, kFaceLeftHip = kLeftHip;
// Foot-contact joints in feature order: l_ankle, l_foot, r_ankle, r_foot.
constexpr std::array<int, 4> kFootJoints = {kLeftAnkle, kLeftFoot, kRightAnkle, kRightFoot};

// kRestOffsets as a [22, 3] float64 tensor.
torch::Tensor rest_offsets();
// Index of a joint by name ("l_wrist"); throws vimo::Error listing the names when unknown.
int joint_index(const std::string& name);

}  // namespace vimo::motion

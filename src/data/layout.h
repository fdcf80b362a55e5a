// Channel layout of the 262-d per-person features and the joints that augmentation needs
// (DESIGN.md "Motion representation"; joint order of SMPL's first 22 joints).
#pragma once
#include "vimo/motion/clip.h"

namespace vimo::data {

constexpr int kPosBegin = 0;                                             // 22 x 3 positions
constexpr int kVelBegin = kPosBegin + 3 * motion::kNumJoints;            // 22 x 3 velocities
constexpr int kRotBegin = kVelBegin + 3 * motion::kNumJoints;            // 21 x 6 rotations (joints 1..21)
constexpr int kContactBegin = kRotBegin + 6 * (motion::kNumJoints - 1);  // l_ankle, l_foot, r_ankle, r_foot
static_assert(kContactBegin + 4 == motion::kFeatureDim, "262-d layout");

constexpr int kLHip = 1, kRHip = 2, kLShoulder = 16, kRShoulder = 17;
// The joint each joint becomes under a left/right mirror.
constexpr int kMirrorJoint[motion::kNumJoints] = {0,  2,  1,  3,  5,  4,  6,  8,  7,  9,  11,
                                                  10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20};

}  // namespace vimo::data

// Names the data module uses for the 262-d channel layout and the left/right joint map; the one
// definition of each lives in the motion module (features.h, skeleton.h).
#pragma once
#include "vimo/motion/clip.h"
#include "vimo/motion/features.h"
#include "vimo/motion/skeleton.h"

namespace vimo::data {

constexpr int kPosBegin = motion::kPosChannels;          // 22 x 3 positions
constexpr int kVelBegin = motion::kVelChannels;          // 22 x 3 velocities
constexpr int kRotBegin = motion::kRotChannels;          // 21 x 6 rotations (joints 1..21)
constexpr int kContactBegin = motion::kContactChannels;  // l_ankle, l_foot, r_ankle, r_foot
static_assert(kContactBegin + 4 == motion::kFeatureDim, "262-d layout");

constexpr int kLHip = 1, kRHip = 2, kLShoulder = 16, kRShoulder = 17;
// The joint each joint becomes under a left/right mirror.
inline const auto& kMirrorJoint = motion::kMirror;

}  // namespace vimo::data

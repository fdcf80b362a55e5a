// The 22-joint SMPL body: names, parents, rest offsets and chains (see skeleton.h).
#include "vimo/motion/skeleton.h"

#include "vimo/core/error.h"

namespace vimo::motion {

const std::array<const char*, kNumJoints> kJointNames = {
    "pelvis",  "l_hip",    "r_hip",    "spine1",     "l_knee",     "r_knee",  "spine2",     "l_ankle",
    "r_ankle", "spine3",   "l_foot",   "r_foot",     "neck",       "l_collar", "r_collar",  "head",
    "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist"};

const std::array<int, kNumJoints> kParents = {-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7,
                                              8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19};

// Differences of the SMPL neutral template joint locations (metres), rounded to millimetres;
// the pelvis entry is its height above the lowest template joint (the toes).
const std::array<std::array<double, 3>, kNumJoints> kRestOffsets = {{
    {0.000, 0.920, 0.000},    // pelvis
    {0.070, -0.091, -0.004},  // l_hip
    {-0.068, -0.091, -0.007}, // r_hip
    {-0.001, 0.113, -0.027},  // spine1
    {0.035, -0.362, -0.009},  // l_knee
    {-0.038, -0.368, -0.003}, // r_knee
    {0.008, 0.134, 0.029},    // spine2
    {-0.013, -0.412, -0.041}, // l_ankle
    {0.014, -0.412, -0.040},  // r_ankle
    {-0.003, 0.049, 0.002},   // spine3
    {0.025, -0.055, 0.123},   // l_foot
    {-0.023, -0.049, 0.121},  // r_foot
    {-0.002, 0.214, -0.044},  // neck
    {0.079, 0.121, -0.039},   // l_collar
    {-0.081, 0.120, -0.043},  // r_collar
    {0.005, 0.065, 0.052},    // head
    {0.092, 0.031, -0.011},   // l_shoulder
    {-0.094, 0.032, -0.009},  // r_shoulder
    {0.259, -0.013, -0.025},  // l_elbow
    {-0.257, -0.017, -0.016}, // r_elbow
    {0.250, 0.009, 0.001},    // l_wrist
    {-0.246, 0.007, -0.003},  // r_wrist
}};

const std::array<std::array<int, 5>, 5> kChains = {{
    {kPelvis, kRightHip, kRightKnee, kRightAnkle, kRightFoot},
    {kPelvis, kLeftHip, kLeftKnee, kLeftAnkle, kLeftFoot},
    {kPelvis, kSpine1, kSpine2, kSpine3, kNeck},
    {kSpine3, kRightCollar, kRightShoulder, kRightElbow, kRightWrist},
    {kSpine3, kLeftCollar, kLeftShoulder, kLeftElbow, kLeftWrist},
}};

const std::array<int, kNumJoints> kMirror = {0,  2,  1,  3,  5,  4,  6,  8,  7,  9,  11,
                                             10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20};

torch::Tensor rest_offsets() {
  auto t = torch::empty({kNumJoints, 3}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (int j = 0; j < kNumJoints; ++j)
    for (int k = 0; k < 3; ++k) a[j][k] = kRestOffsets[j][k];
  return t;
}

int joint_index(const std::string& name) {
  for (int j = 0; j < kNumJoints; ++j)
    if (name == kJointNames[j]) return j;
  std::string all;
  for (auto* n : kJointNames) all += std::string(all.empty() ? "" : ", ") + n;
  throw Error("unknown joint name '" + name + "'; use one of: " + all);
}

}  // namespace vimo::motion

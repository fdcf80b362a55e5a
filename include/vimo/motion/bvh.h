// BVH motion capture files: a parser for any hierarchy and channel order, forward kinematics to joint
// positions, the mapping of CMU-, Mixamo- and SMPL-named skeletons onto the 22 SMPL joints, and the
// writer of the 22 joints as one BVH file per person.
#pragma once
#include <torch/torch.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "vimo/motion/clip.h"

namespace vimo::motion {

struct BvhJoint {
  std::string name;         // "End Site" entries are named "<parent>/end"
  int parent = -1;
  std::array<double, 3> offset{};
  std::vector<int> channels;  // 0..2: X/Y/Z position, 3..5: X/Y/Z rotation, in file order
  int first_channel = 0;      // column of channels[0] in a frame row
  bool end_site = false;
};

struct Bvh {
  std::string path;
  std::vector<BvhJoint> joints;  // parents before children
  torch::Tensor frames;          // [T, channels] float64 as in the file (degrees, file units)
  double frame_time = 0;         // seconds
  int find(const std::string& name) const;  // -1 when absent
};

Bvh parse_bvh(const std::string& path);
Bvh parse_bvh_text(const std::string& text, const std::string& name);  // `name` for error messages

// Positions of all joints (end sites included) [T, J, 3] float64 in file units and axes.
torch::Tensor bvh_positions(const Bvh& bvh);

struct BvhImportOptions {
  double scale = 0;  // metres per file unit; 0 = detect (CMU cgspeed 0.056444, else from body height)
  int skip_frames = 0;  // leading frames to drop (CMU cgspeed files start with a T-pose frame)
  char up = 'y';
  // SMPL joint name -> BVH joint name ("l_wrist" -> "LeftHand"), overriding the built-in tables.
  std::map<std::string, std::string> mapping;
};

// The 22 SMPL joints [T', 22, 3] float64, metres, Y up, resampled to 30 fps.
torch::Tensor bvh_to_smpl_joints(const Bvh& bvh, const BvhImportOptions& opts = {});
// 1 to 8 BVH files, one per person (same length after resampling) -> a clip [T-1, P, 262] canonical to
// the first person; id = first file's stem.
Clip import_bvh(const std::vector<std::string>& paths, const BvhImportOptions& opts = {});

// ---- Export (bvh_write.cpp; docs/motion.md "BVH export")
// The BVH name of an SMPL joint: "Pelvis", "L_Hip", "Spine1", ... (kJointNames capitalised).
std::string bvh_joint_name(int joint);
// Rotation channels of every joint: "Zrotation Yrotation Xrotation", R = Rz Ry Rx (euler_to_matrix order).
constexpr std::array<int, 3> kBvhEulerOrder = {2, 1, 0};

// One person's joints [T, 22, 3] (metres, Y up, any float dtype) -> BVH text: the 22 joints under
// Pelvis (root: 6 channels, position absolute since its OFFSET is 0), end sites above the head, past
// the wrists and in front of the toes, offsets in metres fitted to the body (mean bone lengths), local
// rotations from inverse kinematics. Named errors for a bad shape, NaN/inf or fps <= 0.
std::string bvh_text(const torch::Tensor& joints, double fps = kFps, const std::string& name = "joints");
// bvh_text written to `path` through a temporary name.
void write_bvh(const std::string& path, const torch::Tensor& joints, double fps = kFps);
// joints [T, P, 22, 3], P 1..8, in one world frame -> <prefix>_A.bvh, <prefix>_B.bvh, ... (the
// renders' letters), each person in that shared frame. Every file is checked and built before the first
// is written. Returns the paths.
std::vector<std::string> write_bvh_persons(const std::string& prefix, const torch::Tensor& joints, double fps = kFps);
// features [T, P, 262] (or [T, 262]) -> write_bvh_persons of their position channels at 30 fps.
std::vector<std::string> export_features_bvh(const std::string& prefix, const torch::Tensor& features);
// `out` as given to --out/--bvh: a folder (existing, or ending in '/') -> <out>/<stem>; "x.bvh" -> "x";
// anything else is the prefix itself.
std::string bvh_prefix(const std::string& out, const std::string& stem);

}  // namespace vimo::motion

// BVH motion capture files: a parser for any hierarchy and channel order, forward kinematics to joint
// positions, and the mapping of CMU-style (and Mixamo-style) skeletons onto the 22 SMPL joints.
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
// One or two BVH files (same length after resampling) -> a clip [T-1, P, 262]; id = first file's stem.
Clip import_bvh(const std::vector<std::string>& paths, const BvhImportOptions& opts = {});

}  // namespace vimo::motion

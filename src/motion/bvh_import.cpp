// BVH import: the 22 SMPL joints taken from CMU-, Mixamo- or SMPL-named skeletons, and 1..8 files
// (persons) turned into a clip (see bvh.h).
#include <cmath>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/features.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth_group.h"

namespace vimo::motion {

namespace {

struct Source {
  const char* a;
  const char* b;  // nullptr: the joint itself; else a point between a and b
  double t;
};

// CMU cgspeed skeleton (31 joints). Its LowerBack, Neck and shoulders sit at their parents, so the
// SMPL spine is spread over Spine/Spine1/Neck1 and the collars lie halfway along the clavicles.
const std::array<Source, kNumJoints> kCmu = {{
    {"Hips", nullptr, 0}, {"LeftUpLeg", nullptr, 0}, {"RightUpLeg", nullptr, 0}, {"Spine", nullptr, 0},
    {"LeftLeg", nullptr, 0}, {"RightLeg", nullptr, 0}, {"Spine", "Spine1", 0.5}, {"LeftFoot", nullptr, 0},
    {"RightFoot", nullptr, 0}, {"Spine1", nullptr, 0}, {"LeftToeBase", nullptr, 0}, {"RightToeBase", nullptr, 0},
    {"Neck1", nullptr, 0}, {"LeftShoulder", "LeftArm", 0.5}, {"RightShoulder", "RightArm", 0.5}, {"Head", nullptr, 0},
    {"LeftArm", nullptr, 0}, {"RightArm", nullptr, 0}, {"LeftForeArm", nullptr, 0}, {"RightForeArm", nullptr, 0},
    {"LeftHand", nullptr, 0}, {"RightHand", nullptr, 0},
}};

// Mixamo-style names (any "prefix:" removed): Spine, Spine1, Spine2, Neck, Head, LeftShoulder, ...
const std::array<Source, kNumJoints> kMixamo = {{
    {"Hips", nullptr, 0}, {"LeftUpLeg", nullptr, 0}, {"RightUpLeg", nullptr, 0}, {"Spine", nullptr, 0},
    {"LeftLeg", nullptr, 0}, {"RightLeg", nullptr, 0}, {"Spine1", nullptr, 0}, {"LeftFoot", nullptr, 0},
    {"RightFoot", nullptr, 0}, {"Spine2", nullptr, 0}, {"LeftToeBase", nullptr, 0}, {"RightToeBase", nullptr, 0},
    {"Neck", nullptr, 0}, {"LeftShoulder", nullptr, 0}, {"RightShoulder", nullptr, 0}, {"Head", nullptr, 0},
    {"LeftArm", nullptr, 0}, {"RightArm", nullptr, 0}, {"LeftForeArm", nullptr, 0}, {"RightForeArm", nullptr, 0},
    {"LeftHand", nullptr, 0}, {"RightHand", nullptr, 0},
}};

std::string bare(const std::string& n) {
  auto c = n.rfind(':');
  return c == std::string::npos ? n : n.substr(c + 1);
}

int lookup(const Bvh& b, const std::string& name) {
  for (size_t i = 0; i < b.joints.size(); ++i)
    if (!b.joints[i].end_site && (b.joints[i].name == name || bare(b.joints[i].name) == name)) return static_cast<int>(i);
  return -1;
}

std::string joint_list(const Bvh& b) {
  std::string s;
  for (const auto& j : b.joints)
    if (!j.end_site) s += (s.empty() ? "" : ", ") + j.name;
  return s;
}

}  // namespace

torch::Tensor bvh_to_smpl_joints(const Bvh& b, const BvhImportOptions& o) {
  VIMO_CHECK(o.skip_frames >= 0 && o.skip_frames < b.frames.size(0) - 1,
             b.path + ": cannot skip " + std::to_string(o.skip_frames) + " of " + std::to_string(b.frames.size(0)) + " frames");
  auto pos = bvh_positions(b).narrow(0, o.skip_frames, b.frames.size(0) - o.skip_frames);
  check_finite(pos, b.path);
  bool cmu = lookup(b, "LowerBack") >= 0 && lookup(b, "Neck1") >= 0;
  // Files written by write_bvh (and other SMPL exports) name the 22 joints themselves: Pelvis, L_Hip, ...
  bool smpl = true;
  for (int k = 0; k < kNumJoints && smpl; ++k) smpl = lookup(b, bvh_joint_name(k)) >= 0;
  const auto& table = cmu ? kCmu : kMixamo;
  std::vector<torch::Tensor> out;
  for (int k = 0; k < kNumJoints; ++k) {
    auto user = o.mapping.find(kJointNames[k]);
    Source s = table[k];
    if (smpl) s = Source{nullptr, nullptr, 0};
    std::string a = user != o.mapping.end() ? user->second : smpl ? bvh_joint_name(k) : s.a;
    int ia = lookup(b, a);
    VIMO_CHECK(ia >= 0, b.path + ": no joint '" + a + "' for SMPL joint " + kJointNames[k] +
                            "; map it explicitly (--map " + kJointNames[k] + "=<BVH joint>). The file has: " + joint_list(b));
    auto p = pos.select(1, ia);
    if (user == o.mapping.end() && s.b) {
      int ib = lookup(b, s.b);
      VIMO_CHECK(ib >= 0, b.path + ": no joint '" + std::string(s.b) + "' for SMPL joint " + kJointNames[k] +
                              "; map it explicitly (--map " + kJointNames[k] + "=<BVH joint>)");
      p = p * (1 - s.t) + pos.select(1, ib) * s.t;
    }
    out.push_back(p);
  }
  auto joints = torch::stack(out, 1);  // [T, 22, 3] file units
  double scale = o.scale;
  if (scale <= 0) {
    if (cmu) {
      scale = 0.056444;  // CMU cgspeed units (the dataset's documented factor)
    } else {
      auto f0 = joints[0];
      double h = (f0.select(1, o.up == 'z' ? 2 : 1).max() - f0.select(1, o.up == 'z' ? 2 : 1).min()).item<double>();
      // The first frame's head-to-toe extent tells the unit for a person of about 1.4-1.9 m.
      if (h > 0.9 && h < 2.5) scale = 1;
      else if (h > 90 && h < 250) scale = 0.01;
      else if (h > 900 && h < 2500) scale = 0.001;
      else if (h > 35 && h < 90) scale = 0.0254;
      else
        throw Error(b.path + ": cannot tell the length unit (first-frame height " + std::to_string(h) +
                    " file units); pass the metres per unit with --scale");
    }
  }
  joints = joints * scale;
  if (o.up == 'z') joints = z_up_to_y_up(joints);
  // Files store the frame time rounded (0.033333, CMU 0.008333): snap a rate that close to a whole number
  // onto it, so 30 fps files keep every frame and 120 fps ones take every 4th without interpolation.
  double fps = 1.0 / b.frame_time;
  if (std::round(fps) >= 1 && std::abs(fps - std::round(fps)) < 2e-4 * std::round(fps)) fps = std::round(fps);
  return resample(joints, fps, kFps);
}

Clip import_bvh(const std::vector<std::string>& paths, const BvhImportOptions& o) {
  VIMO_CHECK(!paths.empty() && paths.size() <= static_cast<size_t>(kMaxGroupPersons),
             "import_bvh: give 1 to " + std::to_string(kMaxGroupPersons) + " BVH files (one per person), got " +
                 std::to_string(paths.size()));
  std::vector<torch::Tensor> joints;
  for (const auto& p : paths) joints.push_back(bvh_to_smpl_joints(parse_bvh(p), o));
  for (size_t p = 1; p < joints.size(); ++p)
    VIMO_CHECK(joints[0].size(0) == joints[p].size(0),
               "persons of different lengths: " + paths[0] + " gives " + std::to_string(joints[0].size(0)) + " frames at 30 fps, " +
                   paths[p] + " gives " + std::to_string(joints[p].size(0)) + "; trim the files to the same time span");
  FeatureOptions fo;
  fo.name.clear();
  for (size_t p = 0; p < paths.size(); ++p) fo.name += (p ? " + " : "") + paths[p];
  return Clip{std::filesystem::path(paths[0]).stem().string(), joints_to_features(joints, {}, fo), {}};
}

}  // namespace vimo::motion

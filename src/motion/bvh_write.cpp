// BVH export of the 22 SMPL joints (see bvh.h): the skeleton's offsets fitted to the body, local
// rotations from inverse kinematics as Z-Y-X Euler angles, one file per person.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/features.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth_group.h"

namespace vimo::motion {
namespace {

// End sites (metres, in the rest pose, which faces +Z with the left arm along +X): they only give the
// leaf bones a length to draw in viewers; they are not data.
constexpr double kHeadTop = 0.10, kHandLength = 0.08, kToeLength = 0.05;

std::vector<std::vector<int>> children() {
  std::vector<std::vector<int>> c(kNumJoints);
  for (int j = 1; j < kNumJoints; ++j) c[kParents[j]].push_back(j);
  return c;
}

struct Fit {
  torch::Tensor offsets;  // [22, 3] float64, entry 0 zero (the root's position channels are absolute)
  torch::Tensor degrees;  // [T, 22, 3] local rotations as kBvhEulerOrder angles
};

// Offsets: template directions at the body's mean bone lengths (body_offsets), except the children of
// joints with several children (pelvis, spine3), which are measured in their parent's fitted frame and
// averaged over the clip, so a rigid body's hips, spine1, neck and collars are reproduced exactly too.
Fit fit(const torch::Tensor& joints) {
  auto off = body_offsets(joints);
  torch::Tensor global;
  forward_kinematics(inverse_kinematics(joints, off), joints.select(1, kPelvis), off, &global);  // [T, 22, 3, 3]
  auto ch = children();
  for (int j = 0; j < kNumJoints; ++j) {
    if (ch[j].size() < 2) continue;
    auto gt = global.select(1, j).transpose(-1, -2);
    for (int c : ch[j]) {
      auto d = (joints.select(1, c) - joints.select(1, j)).unsqueeze(-1);
      off[c] = gt.matmul(d).squeeze(-1).mean(0);
    }
  }
  off[kPelvis].zero_();
  auto deg = matrix_to_euler(inverse_kinematics(joints, off), kBvhEulerOrder);
  // Per-frame angles may wrap by 360 between frames; unwrap them so viewers interpolate the short way.
  if (deg.size(0) > 1) {
    auto step = deg.narrow(0, 1, deg.size(0) - 1) - deg.narrow(0, 0, deg.size(0) - 1);
    auto turns = torch::round(step / 360.0).cumsum(0) * 360.0;
    deg.narrow(0, 1, deg.size(0) - 1).sub_(turns);
  }
  return {off, deg};
}

std::array<double, 3> end_site(int j, const torch::Tensor& off) {
  if (j == kHead) return {0, kHeadTop, 0};
  if (j == kLeftFoot || j == kRightFoot) return {0, 0, kToeLength};
  double side = off[j][0].item<double>() >= 0 ? 1 : -1;  // wrists: outwards along the arm
  return {side * kHandLength, 0, 0};
}

void put(std::string& s, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  s += buf;
}

void put3(std::string& s, const std::array<double, 3>& v) {
  for (int k = 0; k < 3; ++k) {
    s += ' ';
    put(s, v[static_cast<size_t>(k)]);
  }
}

std::string axis_channels() {
  std::string s;
  for (int a : kBvhEulerOrder) s += std::string(" ") + "XYZ"[a] + "rotation";
  return s;
}

void hierarchy(std::string& s, int j, int depth, const torch::Tensor& off, const std::vector<std::vector<int>>& ch,
               std::vector<int>& order) {
  const std::string in(static_cast<size_t>(depth) * 2, ' ');
  order.push_back(j);
  s += in + (j == kPelvis ? "ROOT " : "JOINT ") + bvh_joint_name(j) + "\n" + in + "{\n" + in + "  OFFSET";
  put3(s, {off[j][0].item<double>(), off[j][1].item<double>(), off[j][2].item<double>()});
  s += "\n" + in + (j == kPelvis ? "  CHANNELS 6 Xposition Yposition Zposition" : "  CHANNELS 3") + axis_channels() + "\n";
  for (int c : ch[static_cast<size_t>(j)]) hierarchy(s, c, depth + 1, off, ch, order);
  if (ch[static_cast<size_t>(j)].empty()) {
    s += in + "  End Site\n" + in + "  {\n" + in + "    OFFSET";
    put3(s, end_site(j, off));
    s += "\n" + in + "  }\n";
  }
  s += in + "}\n";
}

}  // namespace

std::string bvh_joint_name(int joint) {
  VIMO_CHECK(joint >= 0 && joint < kNumJoints, "bvh_joint_name: no joint " + std::to_string(joint));
  std::string n = kJointNames[static_cast<size_t>(joint)];
  for (size_t i = 0; i < n.size(); ++i)
    if (i == 0 || n[i - 1] == '_') n[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(n[i])));
  return n;
}

std::string bvh_text(const torch::Tensor& joints_in, double fps, const std::string& name) {
  VIMO_CHECK(joints_in.defined() && joints_in.dim() == 3 && joints_in.size(0) >= 1 && joints_in.size(1) == kNumJoints &&
                 joints_in.size(2) == 3,
             name + ": BVH export needs one person's joints [T, 22, 3] (T >= 1), got " +
                 (joints_in.defined() ? c10::str(joints_in.sizes()) : std::string("nothing")));
  VIMO_CHECK(fps > 0 && std::isfinite(fps), name + ": frame rate must be positive, got " + std::to_string(fps));
  auto joints = joints_in.to(torch::kCPU, torch::kFloat64).contiguous();
  check_finite(joints, name);
  auto f = fit(joints);
  auto ch = children();
  std::string s = "HIERARCHY\n";
  std::vector<int> order;  // joints in file (depth-first) order
  hierarchy(s, kPelvis, 0, f.offsets, ch, order);
  const int64_t t = joints.size(0);
  char frame_time[32];
  std::snprintf(frame_time, sizeof(frame_time), "%.9f", 1.0 / fps);
  s += "MOTION\nFrames: " + std::to_string(t) + "\nFrame Time: " + frame_time + "\n";
  auto root = joints.select(1, kPelvis);
  auto r = root.accessor<double, 2>();
  auto d = f.degrees.contiguous();
  auto a = d.accessor<double, 3>();
  s.reserve(s.size() + static_cast<size_t>(t) * (3 + 3 * kNumJoints) * 12);
  for (int64_t i = 0; i < t; ++i) {
    for (int k = 0; k < 3; ++k) {
      put(s, r[i][k]);
      s += ' ';
    }
    for (size_t n = 0; n < order.size(); ++n)
      for (int k = 0; k < 3; ++k) {
        put(s, a[i][order[n]][k]);
        s += n + 1 == order.size() && k == 2 ? '\n' : ' ';
      }
  }
  return s;
}

void write_bvh(const std::string& path, const torch::Tensor& joints, double fps) {
  core::write_file_atomic(path, bvh_text(joints, fps, path));
}

std::vector<std::string> write_bvh_persons(const std::string& prefix, const torch::Tensor& joints, double fps) {
  VIMO_CHECK(joints.defined() && joints.dim() == 4 && joints.size(1) >= 1 && joints.size(1) <= kMaxGroupPersons,
             prefix + ": BVH export needs joints [T, P, 22, 3] with P 1.." + std::to_string(kMaxGroupPersons) + ", got " +
                 (joints.defined() ? c10::str(joints.sizes()) : std::string("nothing")));
  std::vector<std::string> paths, texts;
  for (int64_t p = 0; p < joints.size(1); ++p) {
    paths.push_back(prefix + "_" + static_cast<char>('A' + p) + ".bvh");
    texts.push_back(bvh_text(joints.select(1, p), fps, paths.back()));
  }
  for (size_t p = 0; p < paths.size(); ++p) core::write_file_atomic(paths[p], texts[p]);
  return paths;
}

std::vector<std::string> export_features_bvh(const std::string& prefix, const torch::Tensor& features) {
  VIMO_CHECK(features.defined() && (features.dim() == 2 || features.dim() == 3) && features.size(-1) == kFeatureDim,
             prefix + ": BVH export needs features [T, P, " + std::to_string(kFeatureDim) + "] or [T, " +
                 std::to_string(kFeatureDim) + "], got " + (features.defined() ? c10::str(features.sizes()) : std::string("nothing")));
  auto f = features.dim() == 2 ? features.unsqueeze(1) : features;
  return write_bvh_persons(prefix, features_to_joints(f), kFps);
}

std::string bvh_prefix(const std::string& out, const std::string& stem) {
  namespace fs = std::filesystem;
  VIMO_CHECK(!out.empty(), "BVH output: give a prefix or a folder");
  if (out.back() == '/' || fs::is_directory(out)) return (fs::path(out) / stem).string();
  const fs::path p(out);
  return p.extension() == ".bvh" ? (p.parent_path() / p.stem()).string() : out;
}

}  // namespace vimo::motion

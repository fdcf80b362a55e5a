// InterHuman 262-d features from joints and back, matching InterGen's process_motion_np plus the
// rigid_transform that moves person B into person A's canonical frame (see features.h).
#include "vimo/motion/features.h"

#include <cmath>

#include "vimo/core/error.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {

torch::Tensor z_up_to_y_up(const torch::Tensor& p) {
  return torch::stack({p.select(-1, 0), p.select(-1, 2), -p.select(-1, 1)}, -1);
}

torch::Tensor y_up_to_z_up(const torch::Tensor& p) {
  return torch::stack({p.select(-1, 0), -p.select(-1, 2), p.select(-1, 1)}, -1);
}

torch::Tensor resample(const torch::Tensor& x, double src_fps, double dst_fps) {
  VIMO_CHECK(src_fps > 0 && dst_fps > 0, "resample: frame rates must be positive");
  if (std::abs(src_fps - dst_fps) < 1e-9 || x.size(0) < 2) return x;
  int64_t n = x.size(0);
  double duration = (n - 1) / src_fps;
  int64_t m = static_cast<int64_t>(std::floor(duration * dst_fps + 1e-6)) + 1;
  auto t = torch::arange(m, torch::kFloat64) * (src_fps / dst_fps);  // positions in source frames
  auto i0 = t.floor().clamp_max(n - 1).to(torch::kLong);
  auto i1 = (i0 + 1).clamp_max(n - 1);
  auto w = (t - i0.to(torch::kFloat64)).to(x.dtype());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = m;
  w = w.view(shape);
  return x.index_select(0, i0) * (1 - w) + x.index_select(0, i1) * w;
}

void check_finite(const torch::Tensor& t, const std::string& name) {
  auto bad = (~torch::isfinite(t)).reshape({t.size(0), -1}).any(1);
  if (!bad.any().item<bool>()) return;
  int64_t first = bad.nonzero()[0][0].item<int64_t>();
  throw Error(name + ": " + std::to_string(bad.sum().item<int64_t>()) + " frame(s) hold NaN or inf (first: frame " +
              std::to_string(first) + "); fix or drop the clip (for InterHuman-layout data add its id to ignore_list.txt)");
}

namespace {

torch::Tensor prepare(const torch::Tensor& j, const FeatureOptions& o, size_t p) {
  std::string who = o.name + " person " + std::to_string(p + 1);
  VIMO_CHECK(j.dim() == 3 && j.size(1) == kNumJoints && j.size(2) == 3,
             who + ": joints must be [T, 22, 3], got " + c10::str(j.sizes()));
  VIMO_CHECK(o.up == 'y' || o.up == 'z', o.name + ": up axis must be 'y' or 'z'");
  auto x = j.to(torch::kFloat64);
  check_finite(x, who);
  if (o.up == 'z') x = z_up_to_y_up(x);
  return resample(x, o.fps, kFps);
}

}  // namespace

torch::Tensor canonicalize(const std::vector<torch::Tensor>& joints, const FeatureOptions& o, CanonicalFrame* frame) {
  VIMO_CHECK(!joints.empty() && joints.size() <= 8, o.name + ": expected 1 to 8 persons, got " + std::to_string(joints.size()));
  std::vector<torch::Tensor> xs;
  for (size_t p = 0; p < joints.size(); ++p) xs.push_back(prepare(joints[p], o, p));
  for (size_t p = 1; p < xs.size(); ++p)
    VIMO_CHECK(xs[0].size(0) == xs[p].size(0),
               o.name + ": persons have different lengths (" + std::to_string(joints[0].size(0)) + " and " +
                   std::to_string(joints[p].size(0)) + " frames); trim all to the same frames");
  VIMO_CHECK(xs[0].size(0) >= 2, o.name + ": needs at least 2 frames, got " + std::to_string(xs[0].size(0)));
  CanonicalFrame f;
  auto a0 = xs[0][0];  // [22, 3]
  f.root_x = a0[kPelvis][0].item<double>();
  f.root_z = a0[kPelvis][2].item<double>();
  auto across = a0[kFaceRightHip] - a0[kFaceLeftHip];
  double ax = across[0].item<double>(), az = across[2].item<double>();
  // forward = up x across = (a_z, 0, -a_x); turn it onto +Z.
  double fx = az, fz = -ax;
  VIMO_CHECK(std::hypot(fx, fz) > 1e-6,
             o.name + ": person 1's hips coincide (or are vertical) in the first frame; cannot find its facing");
  f.yaw = std::atan2(-fx, fz);
  auto r = rotation_about_y(torch::tensor(f.yaw, torch::kFloat64));  // [3, 3]
  std::vector<torch::Tensor> out;
  for (auto& x : xs) {
    double floor = x.select(-1, 1).min().item<double>();
    f.floor.push_back(floor);
    auto shift = torch::tensor({f.root_x, floor, f.root_z}, torch::kFloat64);
    out.push_back((x - shift).matmul(r.t()));
  }
  if (frame) *frame = f;
  return torch::stack(out, 1);
}

torch::Tensor foot_contacts(const torch::Tensor& c, const FeatureOptions& o) {
  auto feet = c.index_select(1, torch::tensor({kFootJoints[0], kFootJoints[1], kFootJoints[2], kFootJoints[3]}));
  auto step = (feet.narrow(0, 1, c.size(0) - 1) - feet.narrow(0, 0, c.size(0) - 1)).pow(2).sum(-1);  // [T-1, 4]
  auto height = feet.narrow(0, 0, c.size(0) - 1).select(-1, 1);
  auto limit = torch::tensor({o.ankle_height, o.toe_height, o.ankle_height, o.toe_height}, torch::kFloat64);
  return ((step < o.contact_threshold) & (height < limit)).to(torch::kFloat64);
}

namespace {

// One person's rotations in any accepted form -> 6D [T, 21, 6] float64 at 30 fps.
torch::Tensor rotations_6d(const torch::Tensor& rot, int64_t frames_in, const FeatureOptions& o, size_t p) {
  std::string who = o.name + " person " + std::to_string(p + 1);
  auto r = rot.to(torch::kFloat64);
  VIMO_CHECK(r.size(0) == frames_in, who + ": rotations have " + std::to_string(r.size(0)) +
                                         " frames but joints have " + std::to_string(frames_in));
  check_finite(r, who + " rotations");
  if (r.dim() == 4 && r.size(1) == kNumJoints) r = r.narrow(1, 1, kNumJoints - 1);
  if (r.dim() == 4 && r.size(1) == kNumJoints - 1 && r.size(2) == 3 && r.size(3) == 3) {
    r = matrix_to_6d(r);
  } else {
    VIMO_CHECK(r.dim() == 3 && r.size(1) == kNumJoints - 1 && r.size(2) == 6,
               who + ": rotations must be [T, 21, 6], [T, 21, 3, 3] or [T, 22, 3, 3], got " + c10::str(rot.sizes()));
  }
  if (std::abs(o.fps - kFps) > 1e-9) r = matrix_to_6d(sixd_to_matrix(resample(r, o.fps, kFps)));
  return r;
}

}  // namespace

torch::Tensor joints_to_features(const std::vector<torch::Tensor>& joints, const std::vector<torch::Tensor>& rotations,
                                 const FeatureOptions& o, CanonicalFrame* frame) {
  VIMO_CHECK(rotations.empty() || rotations.size() == joints.size(),
             o.name + ": give rotations for every person or for none");
  auto canon = canonicalize(joints, o, frame);  // [T, P, 22, 3]
  int64_t t = canon.size(0), np = canon.size(1);
  auto out = torch::zeros({t - 1, np, kFeatureDim}, torch::kFloat64);
  for (int64_t p = 0; p < np; ++p) {
    auto c = canon.select(1, p);
    auto dst = out.select(1, p);
    dst.narrow(-1, kPosChannels, 66).copy_(c.narrow(0, 0, t - 1).reshape({t - 1, 66}));
    dst.narrow(-1, kVelChannels, 66).copy_((c.narrow(0, 1, t - 1) - c.narrow(0, 0, t - 1)).reshape({t - 1, 66}));
    torch::Tensor r6;
    if (rotations.empty()) {
      r6 = matrix_to_6d(inverse_kinematics(c).narrow(1, 1, kNumJoints - 1));
    } else {
      r6 = rotations_6d(rotations[p], joints[p].size(0), o, p);
      VIMO_CHECK(r6.size(0) == t, o.name + ": rotations and joints differ in length after resampling");
    }
    dst.narrow(-1, kRotChannels, 126).copy_(r6.narrow(0, 0, t - 1).reshape({t - 1, 126}));
    dst.narrow(-1, kContactChannels, 4).copy_(foot_contacts(c, o));
  }
  return out.to(torch::kFloat32);
}

torch::Tensor retime_features(const torch::Tensor& f, double factor) {
  VIMO_CHECK(f.dim() == 3 && f.size(2) == kFeatureDim && f.size(0) >= 1,
             "retime_features: expected [T, P, 262] features, got " + c10::str(f.sizes()));
  VIMO_CHECK(factor > 0 && std::isfinite(factor), "retime_features: the factor must be positive, got " + std::to_string(factor));
  const int64_t T = f.size(0), P = f.size(1);
  auto x = f.to(torch::kFloat64);
  auto pos = x.narrow(-1, kPosChannels, 66).reshape({T, P, kNumJoints, 3});
  auto vel = x.narrow(-1, kVelChannels, 66).reshape({T, P, kNumJoints, 3});
  auto joints = torch::cat({pos, (pos[T - 1] + vel[T - 1]).unsqueeze(0)}, 0);  // [T+1, P, 22, 3]
  auto rot = x.narrow(-1, kRotChannels, 126).reshape({T, P, kNumJoints - 1, 6});
  rot = torch::cat({rot, rot[T - 1].unsqueeze(0)}, 0);  // [T+1, P, 21, 6]
  FeatureOptions o;
  o.fps = kFps / factor;
  o.name = "retimed clip";
  std::vector<torch::Tensor> js, rs;
  for (int64_t p = 0; p < P; ++p) js.push_back(joints.select(1, p)), rs.push_back(rot.select(1, p));
  return joints_to_features(js, rs, o);
}

torch::Tensor features_to_joints(const torch::Tensor& f) {
  VIMO_CHECK(f.dim() >= 1 && f.size(-1) == kFeatureDim,
             "features_to_joints: expected [..., 262] features, got " + c10::str(f.sizes()));
  auto shape = f.sizes().vec();
  shape.back() = kNumJoints;
  shape.push_back(3);
  return f.narrow(-1, kPosChannels, kNumJoints * 3).reshape(shape);
}

torch::Tensor features_to_rotations(const torch::Tensor& f) {
  VIMO_CHECK(f.dim() >= 1 && f.size(-1) == kFeatureDim,
             "features_to_rotations: expected [..., 262] features, got " + c10::str(f.sizes()));
  auto shape = f.sizes().vec();
  shape.back() = kNumJoints - 1;
  shape.push_back(6);
  return sixd_to_matrix(f.narrow(-1, kRotChannels, 126).reshape(shape));
}

}  // namespace vimo::motion

// BVH parsing, forward kinematics and the mapping onto the 22 SMPL joints (see bvh.h).
#include "vimo/motion/bvh.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/motion/features.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {

int Bvh::find(const std::string& name) const {
  for (size_t i = 0; i < joints.size(); ++i)
    if (joints[i].name == name) return static_cast<int>(i);
  return -1;
}

namespace {

struct Tokens {
  std::vector<std::pair<std::string, int>> items;  // token, line
  size_t at = 0;
  std::string name;
  std::string where() const {
    int line = at < items.size() ? items[at].second : (items.empty() ? 0 : items.back().second);
    return name + ":" + std::to_string(line);
  }
  bool done() const { return at >= items.size(); }
  const std::string& peek() const {
    VIMO_CHECK(!done(), name + ": unexpected end of file");
    return items[at].first;
  }
  std::string next() {
    auto& t = peek();
    ++at;
    return t;
  }
  void expect(const std::string& s) {
    VIMO_CHECK(!done() && peek() == s, where() + ": expected '" + s + "', found '" + (done() ? "end of file" : peek()) + "'");
    ++at;
  }
  double number() {
    auto w = where();
    auto s = next();
    try {
      size_t used = 0;
      double v = std::stod(s, &used);
      VIMO_CHECK(used == s.size(), "");
      return v;
    } catch (...) {
      throw Error(w + ": expected a number, found '" + s + "'");
    }
  }
};

int channel_code(const std::string& c) {
  std::string l;
  for (char ch : c) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  static const char* names[] = {"xposition", "yposition", "zposition", "xrotation", "yrotation", "zrotation"};
  for (int i = 0; i < 6; ++i)
    if (l == names[i]) return i;
  return -1;
}

void parse_joint(Tokens& tk, Bvh& b, int parent, int& channel_count) {
  std::string kind = tk.next();  // ROOT, JOINT or End
  BvhJoint j;
  j.parent = parent;
  if (kind == "End") {
    tk.expect("Site");
    j.end_site = true;
    j.name = b.joints[parent].name + "/end";
  } else {
    j.name = tk.next();
  }
  tk.expect("{");
  tk.expect("OFFSET");
  for (int k = 0; k < 3; ++k) j.offset[k] = tk.number();
  if (!j.end_site && !tk.done() && tk.peek() == "CHANNELS") {
    tk.next();
    auto w = tk.where();
    int n = static_cast<int>(tk.number());
    VIMO_CHECK(n >= 0 && n <= 6, w + ": joint " + j.name + " declares " + std::to_string(n) + " channels (0..6 allowed)");
    j.first_channel = channel_count;
    for (int i = 0; i < n; ++i) {
      auto cw = tk.where();
      auto c = tk.next();
      int code = channel_code(c);
      VIMO_CHECK(code >= 0, cw + ": joint " + j.name + " has unknown channel '" + c +
                                "'; BVH channels are Xposition, Yposition, Zposition, Xrotation, Yrotation, Zrotation");
      j.channels.push_back(code);
    }
    channel_count += n;
  }
  int self = static_cast<int>(b.joints.size());
  b.joints.push_back(j);
  while (!tk.done() && tk.peek() != "}") {
    VIMO_CHECK(tk.peek() == "JOINT" || tk.peek() == "End",
               tk.where() + ": expected JOINT, End Site or '}', found '" + tk.peek() + "'");
    parse_joint(tk, b, self, channel_count);
  }
  tk.expect("}");
}

}  // namespace

Bvh parse_bvh_text(const std::string& text, const std::string& name) {
  Tokens tk;
  tk.name = name;
  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    // "Frame Time:" and "Frames:" carry colons; split them off as their own tokens.
    std::istringstream ls(line);
    for (std::string t; ls >> t;) {
      if (t.size() > 1 && t.back() == ':') {
        tk.items.push_back({t.substr(0, t.size() - 1), line_no});
        tk.items.push_back({":", line_no});
      } else {
        tk.items.push_back({t, line_no});
      }
    }
  }
  Bvh b;
  b.path = name;
  tk.expect("HIERARCHY");
  VIMO_CHECK(!tk.done() && tk.peek() == "ROOT", tk.where() + ": expected ROOT after HIERARCHY");
  int channels = 0;
  parse_joint(tk, b, -1, channels);
  tk.expect("MOTION");
  tk.expect("Frames");
  tk.expect(":");
  auto fw = tk.where();
  double nf = tk.number();
  VIMO_CHECK(nf >= 1 && nf == std::floor(nf), fw + ": Frames must be a positive whole number");
  tk.expect("Frame");
  tk.expect("Time");
  tk.expect(":");
  b.frame_time = tk.number();
  VIMO_CHECK(b.frame_time > 0, name + ": Frame Time must be positive");
  int64_t n = static_cast<int64_t>(nf);
  size_t values = tk.items.size() - tk.at;
  VIMO_CHECK(values == static_cast<size_t>(n * channels),
             name + ": " + std::to_string(n) + " frames of " + std::to_string(channels) + " channels need " +
                 std::to_string(n * channels) + " numbers, the MOTION section has " + std::to_string(values));
  b.frames = torch::empty({n, channels}, torch::kFloat64);
  auto* d = b.frames.data_ptr<double>();
  for (int64_t i = 0; i < n * channels; ++i) d[i] = tk.number();
  return b;
}

Bvh parse_bvh(const std::string& path) { return parse_bvh_text(core::read_file(path), path); }

torch::Tensor bvh_positions(const Bvh& b) {
  int64_t t = b.frames.size(0);
  std::vector<torch::Tensor> g(b.joints.size()), p(b.joints.size());
  auto eye = torch::eye(3, torch::kFloat64).expand({t, 3, 3});
  for (size_t i = 0; i < b.joints.size(); ++i) {
    const auto& j = b.joints[i];
    auto trans = torch::tensor({j.offset[0], j.offset[1], j.offset[2]}, torch::kFloat64).expand({t, 3}).clone();
    torch::Tensor rot = eye;
    for (size_t c = 0; c < j.channels.size(); ++c) {
      auto col = b.frames.select(1, j.first_channel + static_cast<int64_t>(c));
      int code = j.channels[c];
      if (code < 3) {
        trans.select(1, code) += col;
      } else {
        auto aa = torch::zeros({t, 3}, torch::kFloat64);
        aa.select(1, code - 3).copy_(col * (M_PI / 180.0));
        rot = rot.matmul(axis_angle_to_matrix(aa));  // intrinsic: channels apply in file order
      }
    }
    if (j.parent < 0) {
      p[i] = trans;
      g[i] = rot;
    } else {
      p[i] = p[j.parent] + g[j.parent].matmul(trans.unsqueeze(-1)).squeeze(-1);
      g[i] = g[j.parent].matmul(rot);
    }
  }
  return torch::stack(p, 1);
}

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
  const auto& table = cmu ? kCmu : kMixamo;
  std::vector<torch::Tensor> out;
  for (int k = 0; k < kNumJoints; ++k) {
    auto user = o.mapping.find(kJointNames[k]);
    Source s = table[k];
    std::string a = user != o.mapping.end() ? user->second : s.a;
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
  return resample(joints, 1.0 / b.frame_time, kFps);
}

Clip import_bvh(const std::vector<std::string>& paths, const BvhImportOptions& o) {
  VIMO_CHECK(paths.size() == 1 || paths.size() == 2, "import_bvh: give one or two BVH files");
  std::vector<torch::Tensor> joints;
  for (const auto& p : paths) joints.push_back(bvh_to_smpl_joints(parse_bvh(p), o));
  if (joints.size() == 2)
    VIMO_CHECK(joints[0].size(0) == joints[1].size(0),
               "persons of different lengths: " + paths[0] + " gives " + std::to_string(joints[0].size(0)) + " frames at 30 fps, " +
                   paths[1] + " gives " + std::to_string(joints[1].size(0)) + "; trim the files to the same time span");
  FeatureOptions fo;
  fo.name = paths.size() == 2 ? paths[0] + " + " + paths[1] : paths[0];
  return Clip{std::filesystem::path(paths[0]).stem().string(), joints_to_features(joints, {}, fo), {}};
}

}  // namespace vimo::motion

// BVH parsing and forward kinematics (see bvh.h); the mapping onto the SMPL joints is in bvh_import.cpp.
#include "vimo/motion/bvh.h"

#include <cctype>
#include <cmath>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/rotation.h"

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

}  // namespace vimo::motion

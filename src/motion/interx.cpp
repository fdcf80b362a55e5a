// Inter-X reader: SMPL-X body parameters (npz) -> joints by forward kinematics -> 262-d pair clips.
#include "vimo/motion/interx.h"

#include <cstring>
#include <filesystem>
#include <regex>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/motion/features.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {
namespace fs = std::filesystem;
namespace {

uint32_t u32(const std::string& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint16_t u16(const std::string& b, size_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}

// A float .npy held in memory -> tensor; nullopt-like undefined tensor for other dtypes.
torch::Tensor parse_npy(const std::string& b, const std::string& what) {
  VIMO_CHECK(b.size() > 10 && b.compare(0, 6, "\x93NUMPY") == 0, what + ": not a .npy entry");
  size_t hlen = b[6] == 1 ? u16(b, 8) : u32(b, 8), hstart = b[6] == 1 ? 10 : 12;
  std::string h = b.substr(hstart, hlen);
  std::smatch m;
  VIMO_CHECK(std::regex_search(h, m, std::regex("'descr':\\s*'([<|=>]?)(\\w+)'")), what + ": bad .npy header");
  std::string descr = m[2];
  if (descr != "f4" && descr != "f8") return {};
  VIMO_CHECK(h.find("'fortran_order': False") != std::string::npos, what + ": Fortran-order arrays are not supported");
  VIMO_CHECK(std::regex_search(h, m, std::regex("'shape':\\s*\\(([^)]*)\\)")), what + ": bad .npy header");
  std::vector<int64_t> shape;
  std::string dims = m[1];
  static const std::regex kDigits("\\d+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), kDigits), end; it != end; ++it)
    shape.push_back(std::stoll(it->str()));
  auto dt = descr == "f4" ? torch::kFloat32 : torch::kFloat64;
  auto t = torch::empty(shape, dt);
  size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  VIMO_CHECK(hstart + hlen + bytes <= b.size(), what + ": truncated .npy entry");
  std::memcpy(t.data_ptr(), b.data() + hstart + hlen, bytes);
  return t;
}

}  // namespace

std::map<std::string, torch::Tensor> read_npz(const std::string& path) {
  auto b = core::read_file(path);
  std::map<std::string, torch::Tensor> out;
  size_t at = 0;
  // Walk the local file headers (signature PK\3\4) one after another.
  while (at + 30 <= b.size() && u32(b, at) == 0x04034b50) {
    uint16_t flags = u16(b, at + 6), method = u16(b, at + 8);
    uint64_t csize = u32(b, at + 18);
    uint16_t nlen = u16(b, at + 26), xlen = u16(b, at + 28);
    std::string name = b.substr(at + 30, nlen);
    // numpy writes zip64 extra fields with the real sizes when it streams; read them from there.
    if (csize == 0xffffffffu || (flags & 8)) {
      size_t x = at + 30 + nlen, xe = x + xlen;
      while (x + 4 <= xe) {
        uint16_t id = u16(b, x), sz = u16(b, x + 2);
        if (id == 1 && sz >= 16) std::memcpy(&csize, b.data() + x + 12, 8);
        x += 4 + sz;
      }
    }
    VIMO_CHECK(method == 0, path + ": entry " + name +
                                " is compressed; vimo reads uncompressed .npz (np.savez). Re-save it with np.savez "
                                "or unzip it");
    size_t data = at + 30 + nlen + xlen;
    VIMO_CHECK(data + csize <= b.size(), path + ": truncated archive at entry " + name);
    if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") {
      auto t = parse_npy(b.substr(data, csize), path + ":" + name);
      if (t.defined()) out[name.substr(0, name.size() - 4)] = t;
    }
    at = data + csize;
  }
  VIMO_CHECK(!out.empty(), path + ": no float arrays found; is it an .npz archive?");
  return out;
}

torch::Tensor smplx_body_joints(const torch::Tensor& root_orient, const torch::Tensor& pose_body,
                                const torch::Tensor& trans, torch::Tensor* local_rot) {
  int64_t t = trans.size(0);
  auto aa = torch::cat({root_orient.reshape({t, 1, 3}), pose_body.reshape({t, kNumJoints - 1, 3})}, 1);
  auto rot = axis_angle_to_matrix(aa.to(torch::kFloat64));
  // Rotations turn about the pelvis, so the template's pelvis height does not move the body.
  auto j = forward_kinematics(rot, trans.to(torch::kFloat64).reshape({t, 3}), rest_offsets());
  if (local_rot) *local_rot = rot;
  return j;
}

std::vector<Clip> read_interx(const std::string& root, const std::string& split, const ReadOptions& opts,
                              ReadStats* stats_out) {
  VIMO_CHECK(fs::is_directory(root + "/motions"),
             root + ": no motions/ folder; unzip Inter-X's motions.zip (and texts.zip) into the root");
  std::string list = io_detail::first_existing({root + "/splits/" + split + ".txt", root + "/" + split + ".txt"});
  VIMO_CHECK(!list.empty(), root + ": the whole " + split + " split is missing: splits/" + split + ".txt not found");
  auto ids = io_detail::read_lines(list);
  ReadStats stats;
  std::vector<Clip> out;
  for (const auto& id : ids) {
    if (opts.limit > 0 && static_cast<int>(out.size()) >= opts.limit) break;
    std::string dir = root + "/motions/" + id, txt = root + "/texts/" + id + ".txt";
    std::string absent;
    for (const auto& f : {dir + "/P1.npz", dir + "/P2.npz", txt})
      if (!fs::exists(f)) absent += (absent.empty() ? "" : ", ") + fs::relative(f, root).string();
    if (!absent.empty()) {
      ++stats.missing;
      stats.missing_ids.push_back(id + " (" + absent + ")");
      continue;
    }
    std::vector<torch::Tensor> joints, rots;
    for (const char* p : {"P1", "P2"}) {
      std::string f = dir + "/" + p + ".npz";
      auto z = read_npz(f);
      for (const char* k : {"root_orient", "pose_body", "trans"})
        VIMO_CHECK(z.count(k), f + ": array '" + k + "' is missing (expected Inter-X SMPL-X parameters)");
      check_finite(z["pose_body"], "Inter-X clip " + id + " " + p);
      torch::Tensor r;
      joints.push_back(smplx_body_joints(z["root_orient"], z["pose_body"], z["trans"], &r));
      rots.push_back(r);
    }
    // The up axis is where the head is, seen from the pelvis.
    auto up = (joints[0].select(1, kHead) - joints[0].select(1, kPelvis)).mean(0);
    FeatureOptions o;
    o.up = up[2].abs().item<double>() > up[1].abs().item<double>() ? 'z' : 'y';
    o.fps = kInterXFps;
    o.name = "Inter-X clip " + id;
    if (joints[0].size(0) < 2 || (joints[0].size(0) - 1) * kFps / kInterXFps < opts.min_frames) {
      ++stats.too_short;
      continue;
    }
    Clip c{id, joints_to_features(joints, rots, o), io_detail::read_lines(txt)};
    if (io_detail::accept_length(c, opts, stats)) out.push_back(std::move(c));
  }
  io_detail::report_missing(root + " (" + split + ")", stats, ids.size(), opts);
  log::info("interx ", root, " ", split, ": ", stats.summary());
  if (stats_out) *stats_out = stats;
  return out;
}

}  // namespace vimo::motion

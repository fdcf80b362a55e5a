// InterHuman reader and raw-layout writer (see interhuman.h).
#include "vimo/motion/interhuman.h"

#include <filesystem>
#include <set>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"
#include "vimo/motion/kinematics.h"
#include "vimo/motion/rotation.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {
namespace fs = std::filesystem;

Clip interhuman_raw_to_clip(const torch::Tensor& raw_a, const torch::Tensor& raw_b, const std::string& id,
                            std::vector<std::string> captions) {
  constexpr int kRotEnd = kInterHumanRotStart + (kNumJoints - 1) * 6;
  std::vector<torch::Tensor> joints, rots;
  for (const auto* raw : {&raw_a, &raw_b}) {
    std::string who = "InterHuman clip " + id + " person" + (raw == &raw_a ? "1" : "2");
    VIMO_CHECK(raw->dim() == 2 && raw->size(1) >= kRotEnd,
               who + ": expected raw rows [T, 492] (at least 312 columns), got " + c10::str(raw->sizes()));
    check_finite(*raw, who);
    int64_t t = raw->size(0);
    joints.push_back(raw->narrow(1, 0, kNumJoints * 3).reshape({t, kNumJoints, 3}));
    rots.push_back(raw->narrow(1, kInterHumanRotStart, (kNumJoints - 1) * 6).reshape({t, kNumJoints - 1, 6}));
  }
  VIMO_CHECK(raw_a.size(0) == raw_b.size(0), "InterHuman clip " + id + ": person1 has " +
                                                 std::to_string(raw_a.size(0)) + " frames and person2 " +
                                                 std::to_string(raw_b.size(0)) + "; both files must have the same length");
  FeatureOptions o;
  o.up = 'z';
  o.name = "InterHuman clip " + id;
  return Clip{id, joints_to_features(joints, rots, o), std::move(captions)};
}

std::vector<Clip> read_interhuman(const std::string& root, const std::string& split, const ReadOptions& opts,
                                  ReadStats* stats_out) {
  std::string motions = root + "/motions_processed";
  VIMO_CHECK(fs::is_directory(motions + "/person1") && fs::is_directory(motions + "/person2"),
             root + ": no motions_processed/person1 and person2 folders; point the root at an InterHuman folder "
                    "(motions_processed/, annots/, split/)");
  std::string list = io_detail::first_existing({root + "/split/" + split + ".txt", root + "/" + split + ".txt"});
  VIMO_CHECK(!list.empty(), root + ": the whole " + split + " split is missing: neither split/" + split +
                                ".txt nor " + split + ".txt exists");
  std::string ignore_file = io_detail::first_existing({root + "/split/ignore_list.txt", root + "/ignore_list.txt"});
  std::set<std::string> ignore;
  if (!ignore_file.empty())
    for (const auto& l : io_detail::read_lines(ignore_file)) ignore.insert(l);
  auto ids = io_detail::read_lines(list);
  ReadStats stats;
  std::vector<Clip> out;
  for (const auto& id : ids) {
    if (opts.limit > 0 && static_cast<int>(out.size()) >= opts.limit) break;
    if (ignore.count(id)) {
      ++stats.ignored;
      continue;
    }
    std::string p1 = motions + "/person1/" + id + ".npy", p2 = motions + "/person2/" + id + ".npy";
    std::string txt = root + "/annots/" + id + ".txt";
    std::string absent;
    for (const auto* f : {&p1, &p2, &txt})
      if (!fs::exists(*f)) absent += (absent.empty() ? "" : ", ") + fs::relative(*f, root).string();
    if (!absent.empty()) {
      ++stats.missing;
      stats.missing_ids.push_back(id + " (" + absent + ")");
      continue;
    }
    auto a = core::load_npy(p1), b = core::load_npy(p2);
    if (a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(0) && a.size(0) - 1 < opts.min_frames) {
      ++stats.too_short;
      continue;
    }
    // Canonicalize only what is kept: InterGen also crops before processing.
    if (opts.max_frames > 0 && a.dim() == 2 && a.size(0) == b.size(0) && a.size(0) > opts.max_frames + 1) {
      a = a.narrow(0, 0, opts.max_frames + 1);
      b = b.narrow(0, 0, opts.max_frames + 1);
      ++stats.truncated;
    }
    auto clip = interhuman_raw_to_clip(a, b, id, io_detail::read_lines(txt));
    if (io_detail::accept_length(clip, opts, stats)) out.push_back(std::move(clip));
  }
  io_detail::report_missing(root + " (" + split + ")", stats, ids.size() - stats.ignored, opts);
  log::info("interhuman ", root, " ", split, ": ", stats.summary());
  if (stats_out) *stats_out = stats;
  return out;
}

torch::Tensor interhuman_raw(const torch::Tensor& joints_in, const torch::Tensor& rotations) {
  VIMO_CHECK(joints_in.dim() == 3 && joints_in.size(1) == kNumJoints && joints_in.size(2) == 3,
             "interhuman_raw: joints must be [T, 22, 3], got " + c10::str(joints_in.sizes()));
  auto joints = joints_in.to(torch::kFloat64);
  check_finite(joints, "interhuman_raw joints");
  int64_t t = joints.size(0);
  torch::Tensor r6;
  if (!rotations.defined()) {
    r6 = matrix_to_6d(inverse_kinematics(joints).narrow(1, 1, kNumJoints - 1));
  } else {
    auto r = rotations.to(torch::kFloat64);
    VIMO_CHECK(r.size(0) == t, "interhuman_raw: rotations have " + std::to_string(r.size(0)) + " frames, joints " +
                                   std::to_string(t));
    if (r.dim() == 4 && r.size(1) == kNumJoints) r = r.narrow(1, 1, kNumJoints - 1);
    if (r.dim() == 4) r = matrix_to_6d(r);
    VIMO_CHECK(r.dim() == 3 && r.size(1) == kNumJoints - 1 && r.size(2) == 6,
               "interhuman_raw: rotations must be [T, 22|21, 3, 3] or [T, 21, 6], got " + c10::str(rotations.sizes()));
    r6 = r;
  }
  auto z = y_up_to_z_up(joints);
  auto lw = z.select(1, kLeftWrist).unsqueeze(1), rw = z.select(1, kRightWrist).unsqueeze(1);
  auto pos = torch::cat({z, lw.expand({t, 15, 3}), rw.expand({t, 15, 3}), lw.expand({t, 5, 3}), rw.expand({t, 5, 3})}, 1);
  auto hands = torch::tensor({1.0, 0.0, 0.0, 0.0, 1.0, 0.0}, torch::kFloat64).expand({t, 30, 6});
  auto raw = torch::cat({pos.reshape({t, 62 * 3}), r6.reshape({t, -1}), hands.reshape({t, -1})}, 1);
  return raw.to(torch::kFloat32).contiguous();
}

void write_interhuman_clip(const std::string& root, const std::string& id, const torch::Tensor& joints_a,
                           const torch::Tensor& joints_b, const torch::Tensor& rot_a, const torch::Tensor& rot_b,
                           const std::vector<std::string>& captions) {
  VIMO_CHECK(!id.empty() && id.find('/') == std::string::npos && id.find('\n') == std::string::npos,
             "write_interhuman_clip: invalid clip id '" + id + "' (no slashes or newlines)");
  VIMO_CHECK(joints_a.dim() == 3 && joints_b.dim() == 3 && joints_a.size(0) == joints_b.size(0),
             "write_interhuman_clip " + id + ": persons must be [T, 22, 3] of the same length, got " +
                 c10::str(joints_a.sizes()) + " and " + c10::str(joints_b.sizes()));
  auto a = interhuman_raw(joints_a, rot_a), b = interhuman_raw(joints_b, rot_b);
  core::save_npy(root + "/motions_processed/person1/" + id + ".npy", a);
  core::save_npy(root + "/motions_processed/person2/" + id + ".npy", b);
  std::string text;
  for (const auto& c : captions) {
    VIMO_CHECK(c.find('\n') == std::string::npos, "write_interhuman_clip " + id + ": a caption holds a newline");
    text += c + "\n";
  }
  core::write_file_atomic(root + "/annots/" + id + ".txt", text);
}

void write_interhuman_split(const std::string& root, const std::string& split, const std::vector<std::string>& ids) {
  std::string text;
  for (const auto& id : ids) text += id + "\n";
  core::write_file_atomic(root + "/split/" + split + ".txt", text);
}

}  // namespace vimo::motion

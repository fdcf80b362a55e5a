// Writes synthetic datasets in InterHuman's layout (through the InterHuman writer) and measures foot
// contact quality of joints.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/parallel.h"
#include "vimo/motion/interhuman.h"
#include "vimo/motion/skeleton.h"
#include "vimo/motion/synth.h"
#include "vimo/motion/synth_body.h"

namespace vimo::motion {

SynthReport write_synth_dataset(const SynthOptions& o) {
  VIMO_CHECK(!o.out.empty(), "data synth: --out is required (the dataset root to write)");
  VIMO_CHECK(o.clips > 0, "data synth: --clips must be positive");
  VIMO_CHECK(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1,
             "data synth: val and test fractions must be >= 0 and sum to less than 1");
  core::ensure_writable_dir(o.out);
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  auto id_of = [](int64_t i) { return std::to_string(i + 1); };
  std::atomic<int64_t> frames{0};
  std::vector<nlohmann::json> meta(static_cast<size_t>(o.clips));
  std::vector<int64_t> per_type(kNumSynthTypes, 0);
  std::mutex mu;
  core::parallel_items(o.clips, o.threads, [&](int64_t i) {
    const std::string id = id_of(i);
    SynthClip c = synth_clip(o.seed, i);
    bool done = fs::exists(o.out + "/motions_processed/person1/" + id + ".npy") &&
                fs::exists(o.out + "/motions_processed/person2/" + id + ".npy") &&
                fs::exists(o.out + "/annots/" + id + ".txt");
    if (!done)
      write_interhuman_clip(o.out, id, c.joints.select(1, 0), c.joints.select(1, 1), c.local_rot.select(1, 0),
                            c.local_rot.select(1, 1), c.captions);
    frames += c.joints.size(0);
    nlohmann::json m = {{"id", id},
                        {"type", synth_type_name(c.type)},
                        {"actor", c.roles.actor},
                        {"actor_side", c.roles.actor_side},
                        {"partner_side", c.roles.partner_side},
                        {"direction", c.roles.direction},
                        {"variant", c.roles.variant},
                        {"frames", c.joints.size(0)}};
    std::lock_guard<std::mutex> lock(mu);
    meta[static_cast<size_t>(i)] = std::move(m);
    ++per_type[static_cast<size_t>(c.type)];
  });

  // Splits: a seeded shuffle of the ids, cut by the fractions (InterHuman ships train/val/test lists).
  std::vector<int64_t> order(static_cast<size_t>(o.clips));
  for (int64_t i = 0; i < o.clips; ++i) order[static_cast<size_t>(i)] = i;
  synth::Rng rng(o.seed ^ 0xA5A5A5A55A5A5A5AULL);
  for (int64_t i = o.clips - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.next() % static_cast<uint64_t>(i + 1))]);
  const auto n_val = static_cast<int64_t>(std::llround(o.clips * o.val_fraction));
  const auto n_test = static_cast<int64_t>(std::llround(o.clips * o.test_fraction));
  std::vector<std::string> val, test, train;
  for (int64_t k = 0; k < o.clips; ++k) {
    auto& dst = k < n_val ? val : k < n_val + n_test ? test : train;
    dst.push_back(id_of(order[static_cast<size_t>(k)]));
  }
  for (auto* v : {&train, &val, &test})
    std::sort(v->begin(), v->end(), [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  write_interhuman_split(o.out, "train", train);
  write_interhuman_split(o.out, "val", val);
  write_interhuman_split(o.out, "test", test);
  nlohmann::json all = {{"generator", "vimo data synth"}, {"seed", o.seed}, {"clips", o.clips}, {"clips_meta", meta}};
  core::write_file_atomic(o.out + "/synth_meta.json", all.dump(1) + "\n");

  SynthReport r;
  r.clips = o.clips, r.frames = frames.load(), r.per_type = per_type;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

FootStats foot_stats(const torch::Tensor& joints_in, double contact_height) {
  VIMO_CHECK(joints_in.dim() == 3 && joints_in.size(1) == kNumJoints && joints_in.size(2) == 3,
             "foot_stats: joints must be [T, 22, 3], got " + c10::str(joints_in.sizes()));
  auto j = joints_in.to(torch::kFloat64).contiguous();
  auto a = j.accessor<double, 3>();
  const int64_t T = j.size(0);
  FootStats s;
  std::vector<double> slides;
  double lowest = 1e9;
  for (int k : kFootJoints) {
    double lo = 1e9;
    for (int64_t t = 0; t < T; ++t) lo = std::min(lo, a[t][k][1]);
    lowest = std::min(lowest, lo);
    for (int64_t t = 1; t < T; ++t) {
      if (a[t][k][1] > lo + contact_height || a[t - 1][k][1] > lo + contact_height) continue;
      slides.push_back(1000.0 * std::hypot(a[t][k][0] - a[t - 1][k][0], a[t][k][2] - a[t - 1][k][2]));
    }
  }
  s.lowest_mm = 1000.0 * lowest;
  s.contact_frames = static_cast<int64_t>(slides.size());
  if (!slides.empty()) {
    double sum = 0;
    for (double v : slides) sum += v;
    s.slide_mean_mm = sum / static_cast<double>(slides.size());
    std::sort(slides.begin(), slides.end());
    s.slide_p95_mm = slides[std::min(slides.size() - 1, static_cast<size_t>(0.95 * static_cast<double>(slides.size())))];
  }
  return s;
}

}  // namespace vimo::motion

// Packing pipeline: read a split, validate and cut clips, augment, write HDF5 atomically, then stats.
#include "vimo/data/prepare.h"

#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/progress.h"
#include "vimo/core/run.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/augment.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/packed.h"

namespace fs = std::filesystem;

namespace vimo::data {
namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + ",";
  return s;
}

// Split of a clip from a format without split lists: a stable hash of its id (the base id, so a
// clip's pieces stay together).
std::string split_of(const std::string& id, const DataSection& cfg) {
  uint64_t h = fnv1a(id);  // FNV's top bits barely move between ids like clip1, clip2: mix them
  h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdull;
  h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  const double u = static_cast<double>(h >> 11) / 9007199254740992.0;
  if (u < cfg.test_fraction) return "test";
  if (u < cfg.test_fraction + cfg.val_fraction) return "val";
  return "train";
}

std::string describe_bad_frame(const motion::Clip& c) {
  auto bad = (~torch::isfinite(c.motion)).nonzero();  // [K, 3]: t, person, channel
  const auto t = bad[0][0].item<int64_t>(), p = bad[0][1].item<int64_t>(), ch = bad[0][2].item<int64_t>();
  return "clip '" + c.id + "' has " + std::to_string(bad.size(0)) + " NaN/inf values (first: frame " +
         std::to_string(t) + ", person " + std::to_string(p) + ", channel " + std::to_string(ch) + ")";
}

// Removes temporaries left by a run that was killed (write_atomic names them <file>.tmp<pid>.<n>).
void remove_stale_temporaries(const std::string& out) {
  // Throwing std::filesystem calls only: the error_code overloads resolve to copies inside
  // libtorch.so that crash.
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.find(".h5.tmp") != std::string::npos || name.find(".safetensors.tmp") != std::string::npos) {
      log::info("removing '", e.path().string(), "' left by an interrupted run");
      try {
        fs::remove_all(e.path());
      } catch (const fs::filesystem_error& err) {
        log::warn("cannot remove '", e.path().string(), "': ", err.what());
      }
    }
  }
}

// Fails early, before any reader runs, on settings that cannot work.
void check_inputs(const DataSection& cfg) {
  VIMO_CHECK(!cfg.root.empty(), "data.root is empty; set it to the dataset folder (data.root=PATH)");
  VIMO_CHECK(fs::is_directory(cfg.root),
             ::vimo::log::cat("data.root '", cfg.root, "' does not exist or is not a folder; set data.root to the ",
                              cfg.format, " dataset folder"));
  VIMO_CHECK(!cfg.splits.empty(), "data.splits is empty; list at least one of train, val, test");
  for (const auto& s : cfg.splits)
    VIMO_CHECK(s == "train" || s == "val" || s == "test",
               ::vimo::log::cat("data.splits: unknown split '", s, "' (train, val or test)"));
  VIMO_CHECK(cfg.min_frames <= cfg.max_frames,
             ::vimo::log::cat("data.min_frames (", cfg.min_frames, ") exceeds data.max_frames (", cfg.max_frames, ")"));
}

void check_stop() {
  if (core::stop_requested()) throw Error("interrupted; nothing half-written was kept, rerun to continue");
}

}  // namespace

std::string config_hash(const DataSection& cfg) {
  std::ostringstream s;
  std::string root = cfg.root;
  try {
    root = fs::weakly_canonical(cfg.root).string();
  } catch (const fs::filesystem_error&) {
  }
  s << "v" << kPackedFormatVersion << "|" << root << "|" << cfg.format << "|"
    << join(cfg.splits) << "|" << cfg.mirror << cfg.swap_persons << "|" << join(cfg.augment_splits) << "|"
    << cfg.min_frames << "|" << cfg.max_frames << "|" << cfg.on_invalid << "|" << cfg.std_floor << "|"
    << cfg.val_fraction << "|" << cfg.test_fraction;
  return hex(fnv1a(s.str()));
}

std::vector<motion::Clip> condition_clips(std::vector<motion::Clip> clips, const DataSection& cfg, bool augment,
                                          SplitReport& r) {
  std::vector<motion::Clip> kept;
  r.source_clips += static_cast<int64_t>(clips.size());
  for (auto& c : clips) {
    VIMO_CHECK(c.motion.defined() && c.motion.dim() == 3 && c.motion.size(2) == motion::kFeatureDim &&
                   c.motion.size(1) >= 1 && c.motion.size(1) <= 2,
               ::vimo::log::cat("clip '", c.id, "': expected motion [T, 1 or 2, 262], got ",
                                (c.motion.defined() ? c.motion.sizes() : c10::IntArrayRef{})));
    c.motion = c.motion.to(torch::kFloat32).contiguous();
    if (!torch::isfinite(c.motion).all().item<bool>()) {
      if (cfg.on_invalid == "error")
        throw Error(describe_bad_frame(c) + "; fix the source or set data.on_invalid=skip to leave such clips out");
      log::warn("skipping ", describe_bad_frame(c));
      ++r.invalid_skipped;
      continue;
    }
    const int64_t T = c.motion.size(0);
    if (T < cfg.min_frames) {
      ++r.short_skipped;
      continue;
    }
    if (T <= cfg.max_frames) {
      kept.push_back(std::move(c));
      continue;
    }
    // Consecutive pieces, each moved back into the canonical frame; a tail under min_frames is dropped.
    for (int64_t at = 0, k = 0; at + cfg.min_frames <= T; at += cfg.max_frames, ++k) {
      const int64_t len = std::min<int64_t>(cfg.max_frames, T - at);
      motion::Clip piece{c.id + "#" + std::to_string(k), canonicalize(c.motion.narrow(0, at, len)), c.captions};
      kept.push_back(std::move(piece));
      if (k > 0) ++r.pieces_added;
    }
  }
  if (augment) {
    const size_t n = kept.size();
    if (cfg.mirror)
      for (size_t i = 0; i < n; ++i) kept.push_back(mirror_clip(kept[i]));
    if (cfg.swap_persons) {
      const size_t m = kept.size();
      for (size_t i = 0; i < m; ++i)
        if (kept[i].motion.size(1) == 2) kept.push_back(swap_clip(kept[i]));
    }
    r.augmented = static_cast<int64_t>(kept.size() - n);
  }
  r.clips = static_cast<int64_t>(kept.size());
  r.frames = 0;
  for (const auto& c : kept) r.frames += c.motion.size(0);
  return kept;
}

PrepareReport prepare_dataset(const DataSection& cfg, const SourceReader& reader, bool force) {
  check_inputs(cfg);
  core::ensure_writable_dir(cfg.out);
  remove_stale_temporaries(cfg.out);
  PrepareReport rep;
  rep.config_hash = config_hash(cfg);
  core::write_config_file((fs::path(cfg.out) / "config.yaml").string(), [&] {
    DataConfig dc{cfg};
    return core::dump_config(dc);
  }());

  std::vector<motion::Clip> unsplit;  // formats without split lists are read once
  bool unsplit_read = false;
  bool train_written = false;
  for (const auto& split : cfg.splits) {
    const std::string path = (fs::path(cfg.out) / (split + ".h5")).string();
    auto& r = rep.splits[split];
    if (!force && fs::exists(path)) {
      try {
        if (PackedDataset::open(path, PackedDataset::Mode::kSlices).attr("config_hash") == rep.config_hash) {
          log::info(path, " is up to date (config hash ", rep.config_hash, "); skipped");
          r.up_to_date = true;
          continue;
        }
      } catch (const Error& e) {
        log::warn("rewriting ", path, ": ", e.what());
      }
    }
    check_stop();
    std::vector<motion::Clip> clips;
    if (reader.has_splits) {
      clips = reader.read(cfg, split, r);
    } else {
      if (!unsplit_read) {
        unsplit = reader.read(cfg, "", r);
        unsplit_read = true;
      }
      for (const auto& c : unsplit)
        if (split_of(c.id, cfg) == split) clips.push_back(c);
    }
    VIMO_CHECK(!clips.empty(),
               ::vimo::log::cat("split '", split, "' of '", cfg.root, "' (", cfg.format,
                                ") has no clips; check the dataset's split lists or remove it from data.splits"));
    const bool augment =
        std::find(cfg.augment_splits.begin(), cfg.augment_splits.end(), split) != cfg.augment_splits.end();
    auto packed = condition_clips(std::move(clips), cfg, augment, r);
    VIMO_CHECK(
        !packed.empty(),
        ::vimo::log::cat("split '", split, "': none of its ", r.source_clips, " clips is usable (", r.short_skipped,
                         " shorter than data.min_frames=", cfg.min_frames, ", ", r.invalid_skipped, " with NaN/inf)"));
    check_stop();
    core::Progress progress("write " + split + ".h5", 1);
    write_packed(path, packed,
                 {{"split", split},
                  {"source_format", cfg.format},
                  {"source_root", cfg.root},
                  {"config_hash", rep.config_hash},
                  {"source_clips", std::to_string(r.source_clips)},
                  {"short_skipped", std::to_string(r.short_skipped)},
                  {"invalid_skipped", std::to_string(r.invalid_skipped)},
                  {"augmented", std::to_string(r.augmented)}});
    progress.add(1);
    progress.finish();
    log::info(split, ": ", r.clips, " clips (", r.source_clips, " read, ", r.short_skipped, " under ", cfg.min_frames,
              " frames skipped, ", r.invalid_skipped, " invalid skipped, ", r.pieces_added, " pieces from long clips, ",
              r.augmented, " augmented copies), ", r.frames, " frames -> ", path);
    if (split == "train") train_written = true;
  }

  const std::string stats_path = (fs::path(cfg.out) / "stats.safetensors").string();
  const std::string train_path = (fs::path(cfg.out) / "train.h5").string();
  bool stats_current = false;
  if (!train_written && !force && fs::exists(stats_path)) {
    try {
      auto st = core::SafeTensors::open(stats_path);
      auto it = st.metadata().find("config_hash");
      stats_current = it != st.metadata().end() && it->second == rep.config_hash;
    } catch (const Error&) {
    }
  }
  if (!stats_current) {
    VIMO_CHECK(fs::exists(train_path),
               ::vimo::log::cat("stats need the train split: '", train_path, "' is missing; add train to data.splits"));
    check_stop();
    auto train = PackedDataset::open(train_path);
    auto stats = compute_stats(train, cfg.std_floor);
    save_stats(stats_path, stats, {{"config_hash", rep.config_hash}, {"source", train_path}});
    rep.stats_written = true;
    log::info("stats over ", stats.frames, " person-frames of train -> ", stats_path);
  }
  return rep;
}

PrepareReport prepare_dataset(const DataSection& cfg, bool force) {
  check_inputs(cfg);
  return prepare_dataset(cfg, reader_for(cfg.format), force);
}

}  // namespace vimo::data

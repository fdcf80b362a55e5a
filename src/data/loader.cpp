// Window and whole-clip loaders: counter-based randomness (batch g draws from a generator seeded by
// (seed, g)), so any batch can be rebuilt from its index alone and a resumed run continues exactly.
#include "vimo/data/loader.h"

#include <random>

#include "vimo/core/error.h"
#include "vimo/core/process_group.h"
#include "vimo/core/log.h"
#include "vimo/core/rng.h"
#include "vimo/data/prefetch.h"

namespace vimo::data {
namespace {

using core::below;
using core::derive_seed;
using motion::kFeatureDim;
constexpr int kStateVersion = 1;

std::string hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}
constexpr uint64_t kWindowStream = 0x57494e444f57ull, kOrderStream = 0x4f52444552ull;

// (x - mean) * inv_std for `frames` rows of 262 floats, rows `src_stride` floats apart.
void normalize_rows(const float* src, int64_t src_stride, int64_t frames, float* dst, const float* mean,
                    const float* inv_std) {
  for (int64_t t = 0; t < frames; ++t) {
    const float* s = src + t * src_stride;
    float* d = dst + t * kFeatureDim;
    for (int c = 0; c < kFeatureDim; ++c) d[c] = (s[c] - mean[c]) * inv_std[c];
  }
}

struct NormTables {
  std::vector<float> mean, inv_std;
  explicit NormTables(const Normalizer& n) {
    VIMO_CHECK(n.defined(), "loader: the normalizer has no stats; pass Normalizer::load(<out>/stats.safetensors)");
    auto m = n.mean().contiguous(), s = n.std().contiguous();
    mean.assign(m.data_ptr<float>(), m.data_ptr<float>() + kFeatureDim);
    for (int c = 0; c < kFeatureDim; ++c) inv_std.push_back(1.f / s.data_ptr<float>()[c]);
  }
};

// Copies and normalizes `len` frames of one person of clip i into dst [len, 262].
void gather(const PackedDataset& ds, int64_t i, int64_t person, int64_t start, int64_t len, float* dst,
            const NormTables& nt) {
  const int64_t P = ds.persons();
  if (ds.in_memory()) {
    const float* base = ds.all().data_ptr<float>() + ((ds.index().offsets[i] + start) * P + person) * kFeatureDim;
    normalize_rows(base, P * kFeatureDim, len, dst, nt.mean.data(), nt.inv_std.data());
  } else {
    auto f = ds.frames(i, start, len).contiguous();
    normalize_rows(f.data_ptr<float>() + person * kFeatureDim, P * kFeatureDim, len, dst, nt.mean.data(),
                   nt.inv_std.data());
  }
}

nlohmann::json dataset_json(const PackedDataset& ds) {
  return {{"path", ds.path()}, {"clips", ds.size()}, {"frames", ds.total_frames()}};
}

// Checks a saved state against this loader; returns the global batch index it points to.
int64_t check_state(const nlohmann::json& s, const std::string& kind, const PackedDataset& ds,
                    const std::vector<std::pair<std::string, int64_t>>& must_match, int64_t bpe, int64_t& seed,
                    uint64_t stream) {
  auto bad = [&](const std::string& why) { throw Error("loader state: " + why + "; state was " + s.dump()); };
  if (!s.is_object() || s.value("loader", "") != kind) bad("not a " + kind + " loader state");
  if (s.value("version", 0) > kStateVersion) bad("written by a newer vimo");
  for (const auto& [key, want] : must_match)
    if (s.value(key, int64_t{-1}) != want)
      bad(key + " was " + std::to_string(s.value(key, int64_t{-1})) + " and is now " + std::to_string(want) +
          "; resume with the same setting or start over");
  const auto& d = s.value("dataset", nlohmann::json::object());
  if (d.value("clips", int64_t{-1}) != ds.size() || d.value("frames", int64_t{-1}) != ds.total_frames())
    bad("the dataset changed since the state was saved (" + std::to_string(ds.size()) + " clips, " +
        std::to_string(ds.total_frames()) + " frames now); re-pack it as before or start over");
  seed = s.value("seed", seed);
  const int64_t epoch = s.value("epoch", int64_t{0}), cursor = s.value("cursor", int64_t{0});
  if (epoch < 0 || cursor < 0 || cursor >= bpe) bad("epoch/cursor out of range");
  const int64_t g = epoch * bpe + cursor;
  if (s.contains("rng") && s["rng"] != hex(derive_seed(seed, stream, g))) bad("its rng does not match its position");
  return g;
}

}  // namespace

// ---------------------------------------------------------------- windows

struct WindowLoader::Impl {
  PackedDataset ds;
  NormTables nt;
  WindowLoaderOptions o;
  std::vector<int64_t> clip, person, cum;  // candidate (clip, person) and cumulative window counts
  int64_t total = 0, too_short = 0, bpe = 1, next_g = 0;
  bool started = false;
  Prefetcher<WindowBatch> pf;

  Impl(PackedDataset d, const Normalizer& n, WindowLoaderOptions opts)
      : ds(std::move(d)), nt(n), o(opts), pf([this](int64_t g) { return make(g); }, opts.workers, opts.prefetch) {
    const auto& ix = ds.index();
    int64_t person_frames = 0;
    for (int64_t i = 0; i < ix.size(); ++i) {
      if (ix.lengths[i] < o.window) {
        ++too_short;
        continue;
      }
      for (int64_t p = 0; p < ix.persons[i]; ++p) {
        clip.push_back(i);
        person.push_back(p);
        cum.push_back(total);
        total += ix.lengths[i] - o.window + 1;
        person_frames += ix.lengths[i];
      }
    }
    VIMO_CHECK(total > 0, ::vimo::log::cat("window loader over '", ds.path(), "': no clip has ", o.window,
                                           " frames (the window); use a shorter window"));
    VIMO_CHECK(o.shard_count >= 1 && o.shard_rank >= 0 && o.shard_rank < o.shard_count && o.batch_size % o.shard_count == 0,
               ::vimo::log::cat("data.batch_size=", o.batch_size, " does not split evenly over ", o.shard_count,
                                " ranks; use a multiple of the number of processes"));
    const int64_t per_batch = static_cast<int64_t>(o.window) * o.batch_size;
    bpe = std::max<int64_t>(1, (person_frames + per_batch - 1) / per_batch);
  }

  WindowBatch make(int64_t g) {
    std::mt19937_64 rng(derive_seed(o.seed, kWindowStream, g));
    WindowBatch b;
    b.epoch = g / bpe;
    b.cursor = g % bpe;
    const auto [lo, hi] = core::shard_range(o.batch_size, o.shard_rank, o.shard_count);
    const int64_t local = hi - lo;
    b.motion = torch::empty({local, o.window, kFeatureDim}, torch::kFloat32);
    float* out = b.motion.data_ptr<float>();
    for (int k = 0; k < o.batch_size; ++k) {  // every draw of the global batch, this shard's gathered
      const auto u = static_cast<int64_t>(below(rng, static_cast<uint64_t>(total)));
      if (k < lo || k >= hi) continue;
      const auto e = std::upper_bound(cum.begin(), cum.end(), u) - cum.begin() - 1;
      const int64_t start = u - cum[e];
      gather(ds, clip[e], person[e], start, o.window, out + static_cast<int64_t>(k - lo) * o.window * kFeatureDim, nt);
      b.clip.push_back(clip[e]);
      b.person.push_back(person[e]);
      b.start.push_back(start);
    }
    return b;
  }
};

WindowLoader::WindowLoader(PackedDataset ds, Normalizer norm, WindowLoaderOptions o)
    : impl_(std::make_unique<Impl>(std::move(ds), norm, o)) {}
WindowLoader::~WindowLoader() { impl_->pf.stop(); }

WindowBatch WindowLoader::next() {
  if (!impl_->started) {
    impl_->pf.start(impl_->next_g);
    impl_->started = true;
  }
  auto b = impl_->pf.next();
  ++impl_->next_g;
  return b;
}

nlohmann::json WindowLoader::state() const {
  const auto& m = *impl_;
  return {{"version", kStateVersion},
          {"loader", "windows"},
          {"seed", m.o.seed},
          {"epoch", m.next_g / m.bpe},
          {"cursor", m.next_g % m.bpe},
          {"batch_size", m.o.batch_size},
          {"window", m.o.window},
          {"rng", hex(derive_seed(m.o.seed, kWindowStream, m.next_g))},
          {"dataset", dataset_json(m.ds)}};
}

void WindowLoader::load_state(const nlohmann::json& s) {
  auto& m = *impl_;
  m.pf.stop();
  m.next_g = check_state(s, "windows", m.ds, {{"batch_size", m.o.batch_size}, {"window", m.o.window}}, m.bpe, m.o.seed,
                         kWindowStream);
  m.started = false;
}

int64_t WindowLoader::batches_per_epoch() const { return impl_->bpe; }
int64_t WindowLoader::windows_available() const { return impl_->total; }
int64_t WindowLoader::clips_too_short() const { return impl_->too_short; }

// ---------------------------------------------------------------- whole clips

struct ClipLoader::Impl {
  PackedDataset ds;
  NormTables nt;
  ClipLoaderOptions o;
  int64_t bpe = 1, next_g = 0;
  bool started = false;
  Prefetcher<ClipBatch> pf;

  Impl(PackedDataset d, const Normalizer& n, ClipLoaderOptions opts)
      : ds(std::move(d)), nt(n), o(opts), pf([this](int64_t g) { return make(g); }, opts.workers, opts.prefetch) {
    const int64_t N = ds.size();
    VIMO_CHECK(N > 0, ::vimo::log::cat("clip loader over '", ds.path(), "': the split has no clips"));
    bpe = o.drop_last ? N / o.batch_size : (N + o.batch_size - 1) / o.batch_size;
    VIMO_CHECK(bpe > 0, ::vimo::log::cat("clip loader over '", ds.path(), "': ", N, " clips make no full batch of ",
                                         o.batch_size, " with drop_last; lower batch_size"));
  }

  std::vector<int64_t> order(int64_t epoch) const {
    std::vector<int64_t> v(ds.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i);
    if (!o.shuffle) return v;
    std::mt19937_64 rng(derive_seed(o.seed, kOrderStream, epoch));
    for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[below(rng, i + 1)]);
    return v;
  }

  ClipBatch make(int64_t g) {
    ClipBatch b;
    b.epoch = g / bpe;
    b.cursor = g % bpe;
    const auto ord = order(b.epoch);
    const int64_t lo = b.cursor * o.batch_size, hi = std::min<int64_t>(ds.size(), lo + o.batch_size);
    const auto& ix = ds.index();
    int64_t tmax = 0;
    for (int64_t k = lo; k < hi; ++k) tmax = std::max(tmax, ix.lengths[ord[k]]);
    const int64_t B = hi - lo, P = ds.persons();
    b.motion = torch::zeros({B, tmax, P, kFeatureDim}, torch::kFloat32);
    b.mask = torch::zeros({B, tmax}, torch::kBool);
    b.lengths = torch::empty({B}, torch::kInt64);
    b.persons = torch::empty({B}, torch::kInt64);
    std::vector<float> tmp;
    for (int64_t k = 0; k < B; ++k) {
      const int64_t i = ord[lo + k], T = ix.lengths[i];
      tmp.resize(static_cast<size_t>(T) * kFeatureDim);
      for (int64_t p = 0; p < ix.persons[i]; ++p) {
        gather(ds, i, p, 0, T, tmp.data(), nt);
        b.motion[k].narrow(0, 0, T).select(1, p).copy_(torch::from_blob(tmp.data(), {T, kFeatureDim}));
      }
      b.mask[k].narrow(0, 0, T).fill_(true);
      b.lengths[k] = T;
      b.persons[k] = ix.persons[i];
      b.clip.push_back(i);
      b.ids.push_back(ix.ids[i]);
      b.captions.push_back(ix.captions[i]);
    }
    return b;
  }
};

ClipLoader::ClipLoader(PackedDataset ds, Normalizer norm, ClipLoaderOptions o)
    : impl_(std::make_unique<Impl>(std::move(ds), norm, o)) {}
ClipLoader::~ClipLoader() { impl_->pf.stop(); }

ClipBatch ClipLoader::next() {
  if (!impl_->started) {
    impl_->pf.start(impl_->next_g);
    impl_->started = true;
  }
  auto b = impl_->pf.next();
  ++impl_->next_g;
  return b;
}

nlohmann::json ClipLoader::state() const {
  const auto& m = *impl_;
  return {{"version", kStateVersion},
          {"loader", "clips"},
          {"seed", m.o.seed},
          {"epoch", m.next_g / m.bpe},
          {"cursor", m.next_g % m.bpe},
          {"batch_size", m.o.batch_size},
          {"shuffle", m.o.shuffle ? 1 : 0},
          {"drop_last", m.o.drop_last ? 1 : 0},
          {"rng", hex(derive_seed(m.o.seed, kOrderStream, m.next_g))},
          {"dataset", dataset_json(m.ds)}};
}

void ClipLoader::load_state(const nlohmann::json& s) {
  auto& m = *impl_;
  m.pf.stop();
  m.next_g = check_state(
      s, "clips", m.ds,
      {{"batch_size", m.o.batch_size}, {"shuffle", m.o.shuffle ? 1 : 0}, {"drop_last", m.o.drop_last ? 1 : 0}}, m.bpe,
      m.o.seed, kOrderStream);
  m.started = false;
}

int64_t ClipLoader::batches_per_epoch() const { return impl_->bpe; }

}  // namespace vimo::data

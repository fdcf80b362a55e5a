// Batch loaders over packed splits: random crop windows per person (tokenizer stage) and whole
// clips with padding and masks (LLM stages). Deterministic for a seed, resumable from a JSON
// state, produced by background threads into a bounded queue.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vimo/core/config.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/packed.h"

namespace vimo::data {

struct WindowLoaderOptions {
  int batch_size = 256;
  int window = 64;
  int workers = 2;   // background threads; 0 = build each batch in next()
  int prefetch = 8;  // batches produced ahead
  int64_t seed = 1234;
  // Data parallelism: this process keeps windows [r*B/n, (r+1)*B/n) of every global batch of B (B a
  // multiple of n); the draws, and so the state, are those of the global batch.
  int shard_rank = 0, shard_count = 1;
  template <class V>
  void visit(V& v) {
    using core::opt;
    v.key("batch_size", batch_size, "windows per batch (over all ranks together)", opt().min(1));
    v.key("window", window, "frames per window; clips shorter than this are not sampled", opt().min(1));
    v.key("workers", workers, "loader threads (0: load on the training thread)", opt().min(0).max(64));
    v.key("prefetch", prefetch, "batches prepared ahead of the trainer", opt().min(1).max(1024));
  }
};

struct WindowBatch {
  torch::Tensor motion;  // [B / shard_count, W, 262] normalized
  std::vector<int64_t> clip, person, start;
  int64_t epoch = 0, cursor = 0;  // position of this batch
};

// Samples (clip, person, start) uniformly over every valid window position of every present person.
// An epoch is ceil(person-frames / (W * B)) batches, i.e. about one pass over the frames.
class WindowLoader {
 public:
  WindowLoader(PackedDataset ds, Normalizer norm, WindowLoaderOptions o);
  ~WindowLoader();
  WindowBatch next();
  // Position after the last batch returned by next(): {"loader", "epoch", "cursor", "seed", "rng", ...}.
  nlohmann::json state() const;
  // Continues from a saved state; the next batch is the one that followed it.
  void load_state(const nlohmann::json& state);
  int64_t batches_per_epoch() const;
  int64_t windows_available() const;  // number of distinct (clip, person, start) positions
  int64_t clips_too_short() const;    // clips with no window (shorter than the window)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ClipLoaderOptions {
  int batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  int workers = 1;
  int prefetch = 4;
  int64_t seed = 1234;
  template <class V>
  void visit(V& v) {
    using core::opt;
    v.key("batch_size", batch_size, "clips per batch", opt().min(1));
    v.key("shuffle", shuffle, "new clip order every epoch (from the seed and the epoch)");
    v.key("drop_last", drop_last, "skip the last, smaller batch of each epoch");
    v.key("workers", workers, "loader threads (0: load on the training thread)", opt().min(0).max(64));
    v.key("prefetch", prefetch, "batches prepared ahead of the trainer", opt().min(1).max(1024));
  }
};

struct ClipBatch {
  torch::Tensor motion;   // [B, Tmax, P, 262] normalized; zero past each clip's length and for absent persons
  torch::Tensor mask;     // [B, Tmax] bool, true on real frames
  torch::Tensor lengths;  // [B] int64
  torch::Tensor persons;  // [B] int64 (1 or 2)
  std::vector<int64_t> clip;
  std::vector<std::string> ids;
  std::vector<std::vector<std::string>> captions;
  int64_t epoch = 0, cursor = 0;
};

// Whole clips in a per-epoch order; Tmax is the longest clip of the batch.
class ClipLoader {
 public:
  ClipLoader(PackedDataset ds, Normalizer norm, ClipLoaderOptions o);
  ~ClipLoader();
  ClipBatch next();
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);
  int64_t batches_per_epoch() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vimo::data

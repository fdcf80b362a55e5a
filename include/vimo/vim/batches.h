// The stage-2 batch stream: samples of the task mixture rendered with the chat template (loss on the
// response only), packed into rows of data.max_length or length-bucketed and padded. Resumable from
// a JSON state; samples longer than the context are skipped and reported, never cut.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vimo/data/packing.h"
#include "vimo/vim/tasks.h"

namespace vimo::vim {

struct BatchOptions {
  int64_t batch_size = 8;       // rows per batch
  int64_t max_length = 512;     // context: tokens per row
  bool pack = true;
  int64_t bucket_batches = 16;  // unpacked: batches per length-sorted pool
  int64_t layers = 0;           // quantizer levels the LM sees
  bool depth = false;           // model.motion_head depth: one position per motion slot
  // Data parallelism: this process gets rows [r*n/W, (r+1)*n/W) of every global batch of n rows; the
  // stream (and its state) is that of the global batch.
  int64_t shard_rank = 0, shard_count = 1;
};

// Renders a conversation to a training sequence: targets on assistant tokens only; with `depth`, in the
// depth-head layout (to_depth).
data::TokenSeq render_sequence(const text::ChatTemplate& chat, const text::Conversation& conv, int64_t tag,
                               bool depth = false);
// A flat sequence -> the depth-head layout of docs/depth_head.md: each slot's Q motion ids become one
// position (its level-0 id, its codes beside), text targets before a slot or a block's close tag
// become depth targets (END = K before the close tag). Throws naming the position of a slot that is
// not Q ids of levels 0..Q-1 in order.
data::TokenSeq to_depth(const data::TokenSeq& flat, const text::UnifiedVocab& vocab);

// Sample n of a stream, rendered: its sequence (nullopt when it cannot be made to fit the context) and
// what it is, for the log line of a skipped sample.
struct SourceItem {
  std::optional<data::TokenSeq> seq;
  std::string what;
};
using SampleSource = std::function<SourceItem(int64_t n)>;

class BatchStream {
 public:
  // Stage 2: the samples of the task mixture over `cache`.
  BatchStream(const data::TokenCache& cache, const SampleStream& samples, const Templates& templates,
              const text::ChatTemplate& chat, int64_t pad_id, BatchOptions o, int64_t seed);
  // Any source of rendered samples (stage 3: conversations mixed with stage-2 samples).
  BatchStream(SampleSource source, int64_t pad_id, BatchOptions o, int64_t seed);
  data::LmBatch next();
  nlohmann::json state() const;
  void load_state(const nlohmann::json& s);
  int64_t too_long() const { return too_long_; }
  // The rendered sequence of sample n, or nullopt (counted, first ones logged) when it is too long.
  std::optional<data::TokenSeq> render(int64_t n);

 private:
  void fill_pool(int64_t p);
  data::LmBatch shard(const std::vector<std::vector<data::TokenSeq>>& rows) const;
  SampleSource source_;
  int64_t pad_;
  BatchOptions o_;
  int64_t seed_;
  int64_t next_ = 0;                  // packed: next sample index
  int64_t pool_ = 0, pool_batch_ = 0;  // unpacked: pool and batch within it
  int64_t filled_pool_ = -1;
  std::vector<std::vector<data::TokenSeq>> pool_batches_;
  int64_t too_long_ = 0;
};

}  // namespace vimo::vim

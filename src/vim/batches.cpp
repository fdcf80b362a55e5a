// Packed and length-bucketed stage-2 batches (vim/batches.h).
#include "vimo/vim/batches.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/process_group.h"
#include "vimo/core/rng.h"

namespace vimo::vim {
namespace {
constexpr uint64_t kPoolStream = 0x504f4f4cull;  // "POOL"
constexpr int kStateVersion = 1;
}  // namespace

data::TokenSeq render_sequence(const text::ChatTemplate& chat, const text::Conversation& conv, int64_t tag, bool depth) {
  const auto r = chat.render(conv);
  data::TokenSeq s;
  s.ids = r.ids;
  s.tag = tag;
  s.targets.assign(r.ids.size(), -100);
  for (size_t t = 0; t + 1 < r.ids.size(); ++t)
    if (r.loss_mask[t + 1]) s.targets[t] = r.ids[t + 1];
  return depth ? to_depth(s, chat.vocab()) : s;
}

data::TokenSeq to_depth(const data::TokenSeq& flat, const text::UnifiedVocab& v) {
  const int64_t Q = v.layout().num_quantizers, K = v.layout().codebook_size;
  const size_t n = flat.ids.size();
  std::vector<int> close;
  for (const char* c : {"</motion>", "</motion_a>", "</motion_b>"}) close.push_back(v.special(c));
  data::TokenSeq d;
  d.tag = flat.tag;
  d.levels = Q;
  std::vector<size_t> last;  // per new position: the flat index of its last id
  for (size_t i = 0; i < n;) {
    const auto info = v.info(flat.ids[i]);
    if (info.kind != text::TokenKind::kMotion) {
      d.ids.push_back(flat.ids[i]);
      d.codes.insert(d.codes.end(), static_cast<size_t>(Q), -1);
      last.push_back(i++);
      continue;
    }
    for (int64_t q = 0; q < Q; ++q) {
      const auto iq = i + static_cast<size_t>(q);
      const auto x = iq < n ? v.info(flat.ids[iq]) : text::TokenInfo{};
      VIMO_CHECK(x.kind == text::TokenKind::kMotion && x.q == q,
                 "depth layout: the motion slot at position " + std::to_string(i) + " is not " + std::to_string(Q) +
                     " ids of levels 0.." + std::to_string(Q - 1) + " (position " + std::to_string(iq) + ")");
      d.codes.push_back(x.k);
    }
    d.ids.push_back(flat.ids[i]);
    last.push_back(i + static_cast<size_t>(Q) - 1);
    i += static_cast<size_t>(Q);
  }
  const size_t m = d.ids.size();
  d.targets.assign(m, -100);
  d.depth_targets.assign(m * static_cast<size_t>(Q), -100);
  auto is_slot = [&](size_t j) { return d.codes[j * static_cast<size_t>(Q)] >= 0; };
  for (size_t j = 0; j < m; ++j) {
    const int64_t t = flat.targets[last[j]];
    if (j + 1 < m && is_slot(j + 1)) {
      if (t != -100)
        for (int64_t q = 0; q < Q; ++q) d.depth_targets[j * Q + q] = d.codes[(j + 1) * Q + q];
    } else if (j + 1 < m && is_slot(j) && std::find(close.begin(), close.end(), d.ids[j + 1]) != close.end()) {
      if (t != -100) d.depth_targets[j * Q] = K;
    } else {
      d.targets[j] = t;
    }
  }
  return d;
}

BatchStream::BatchStream(const data::TokenCache& cache, const SampleStream& samples, const Templates& templates,
                         const text::ChatTemplate& chat, int64_t pad_id, BatchOptions o, int64_t seed)
    : BatchStream(
          [&cache, &samples, &templates, &chat, layers = o.layers, depth = o.depth](int64_t n) {
            const Sample s = samples.draw(n);
            const auto clip = cache.clip(s.clip);
            return SourceItem{render_sequence(chat, build_conversation(templates, s, clip, layers), static_cast<int64_t>(s.task), depth),
                              task_name(s.task) + ", clip " + clip.id};
          },
          pad_id, o, seed) {}

BatchStream::BatchStream(SampleSource source, int64_t pad_id, BatchOptions o, int64_t seed)
    : source_(std::move(source)), pad_(pad_id), o_(o), seed_(seed) {
  VIMO_CHECK(o_.layers > 0, "BatchStream: layers must be positive");
}

std::optional<data::TokenSeq> BatchStream::render(int64_t n) {
  auto item = source_(n);
  if (item.seq && static_cast<int64_t>(item.seq->ids.size()) <= o_.max_length) return std::move(item.seq);
  if (++too_long_ <= 5)
    log::warn("sample ", n, " (", item.what, ")", item.seq ? " has " + std::to_string(item.seq->ids.size()) + " tokens," : "",
              " does not fit data.max_length=", o_.max_length, "; skipped",
              too_long_ == 5 ? " (further ones are counted, not listed)" : "");
  return std::nullopt;
}

void BatchStream::fill_pool(int64_t p) {
  const int64_t W = o_.batch_size * o_.bucket_batches;
  std::vector<data::TokenSeq> seqs;
  for (int64_t n = p * W; n < (p + 1) * W; ++n)
    if (auto s = render(n)) seqs.push_back(std::move(*s));
  VIMO_CHECK(!seqs.empty(), "every sample of pool " + std::to_string(p) + " is longer than data.max_length=" +
                                std::to_string(o_.max_length) + "; raise it");
  std::stable_sort(seqs.begin(), seqs.end(), [](const auto& a, const auto& b) { return a.ids.size() < b.ids.size(); });
  pool_batches_.clear();
  for (size_t i = 0; i < seqs.size(); i += o_.batch_size) {
    std::vector<data::TokenSeq> b(seqs.begin() + i, seqs.begin() + std::min(seqs.size(), i + o_.batch_size));
    pool_batches_.push_back(std::move(b));
  }
  std::mt19937_64 rng(core::derive_seed(seed_, kPoolStream, p));
  for (size_t i = pool_batches_.size(); i > 1; --i) std::swap(pool_batches_[i - 1], pool_batches_[core::below(rng, i)]);
  filled_pool_ = p;
}

data::LmBatch BatchStream::next() {
  std::vector<std::vector<data::TokenSeq>> rows;
  if (o_.pack) {
    int64_t used = 0, misses = 0;
    while (true) {
      auto s = render(next_);
      if (!s) {
        ++next_;
        VIMO_CHECK(++misses < 10000, "10000 samples in a row are longer than data.max_length=" +
                                         std::to_string(o_.max_length) + "; raise it");
        continue;
      }
      misses = 0;
      const int64_t n = static_cast<int64_t>(s->ids.size());
      if (rows.empty() || used + n > o_.max_length) {
        if (static_cast<int64_t>(rows.size()) == o_.batch_size) break;  // sample next_ opens the next batch
        rows.emplace_back();
        used = 0;
      }
      rows.back().push_back(std::move(*s));
      used += n;
      ++next_;
    }
    return shard(rows);
  }
  if (filled_pool_ != pool_) fill_pool(pool_);
  for (const auto& s : pool_batches_[pool_batch_]) rows.push_back({s});
  if (++pool_batch_ >= static_cast<int64_t>(pool_batches_.size())) ++pool_, pool_batch_ = 0;
  return shard(rows);
}

data::LmBatch BatchStream::shard(const std::vector<std::vector<data::TokenSeq>>& rows) const {
  if (o_.shard_count <= 1) return data::make_batch(rows, pad_);
  // Rows [r*n/W, (r+1)*n/W) of the global batch, padded to its longest row (the shapes of one process).
  const int64_t n = static_cast<int64_t>(rows.size()), W = o_.shard_count;
  int64_t longest = 0;
  for (const auto& r : rows) {
    int64_t len = 0;
    for (const auto& s : r) len += static_cast<int64_t>(s.ids.size());
    longest = std::max(longest, len);
  }
  const auto [lo, hi] = core::shard_range(n, o_.shard_rank, W);
  if (lo == hi) {  // fewer rows than ranks: a row without targets adds no loss and no gradient
    auto b = data::make_batch({rows.front()}, pad_, longest);
    b.targets.fill_(-100);
    if (b.depth_targets.defined()) b.depth_targets.fill_(-100);
    b.sequences = 0;
    b.tokens = 0;
    return b;
  }
  return data::make_batch(std::vector<std::vector<data::TokenSeq>>(rows.begin() + lo, rows.begin() + hi), pad_, longest);
}

nlohmann::json BatchStream::state() const {
  return {{"stream", "vim-batches"}, {"version", kStateVersion}, {"pack", o_.pack}, {"seed", seed_},
          {"batch_size", o_.batch_size}, {"max_length", o_.max_length}, {"next_sample", next_},
          {"pool", pool_}, {"pool_batch", pool_batch_}, {"too_long", too_long_}};
}

void BatchStream::load_state(const nlohmann::json& s) {
  auto bad = [&](const std::string& why) {
    throw Error("batch stream state: " + why + " (state " + s.dump() + "); resume with the same data settings or start over with run.resume=false");
  };
  if (!s.is_object() || s.value("stream", "") != "vim-batches") bad("not a stage-2 batch stream state");
  if (s.value("pack", !o_.pack) != o_.pack) bad("data.pack changed");
  if (s.value("batch_size", int64_t{-1}) != o_.batch_size) bad("data.batch_size changed");
  if (s.value("max_length", int64_t{-1}) != o_.max_length) bad("data.max_length changed");
  if (s.value("seed", int64_t{-1}) != seed_) bad("run.seed changed");
  next_ = s.value("next_sample", int64_t{0});
  pool_ = s.value("pool", int64_t{0});
  pool_batch_ = s.value("pool_batch", int64_t{0});
  too_long_ = s.value("too_long", int64_t{0});
  filled_pool_ = -1;
}

}  // namespace vimo::vim

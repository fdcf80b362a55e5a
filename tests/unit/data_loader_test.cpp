// Loaders: batch content against the source clips, determinism for a seed and across thread counts,
// exact resume from a saved JSON state, epoch coverage, padding and masks, and state checks.
#include <gtest/gtest.h>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/data/loader.h"
#include "vimo/data/prefetch.h"

namespace vimo::data {
namespace {

using testing::make_clip;
using testing::TempDir;

struct Fixture {
  TempDir dir;
  std::vector<motion::Clip> clips;
  PackedDataset ds;
  Normalizer norm;
  Fixture() {
    // Lengths 16..79 with one single-person clip; window 20 excludes the shortest.
    for (int i = 0; i < 13; ++i)
      clips.push_back(make_clip("c" + std::to_string(i), 16 + 5 * i, i == 4 ? 1 : 2, static_cast<float>(i),
                                {"cap" + std::to_string(i)}));
    write_packed(dir.file("train.h5"), clips);
    ds = PackedDataset::open(dir.file("train.h5"));
    norm = Normalizer(torch::full({262}, 3.f), torch::full({262}, 2.f));
  }
};

WindowLoaderOptions window_opts(int workers) {
  WindowLoaderOptions o;
  o.batch_size = 8;
  o.window = 20;
  o.workers = workers;
  o.prefetch = 3;
  o.seed = 42;
  return o;
}

TEST(DataLoader, WindowsHoldNormalizedSourceFrames) {
  Fixture f;
  WindowLoader loader(f.ds, f.norm, window_opts(2));
  EXPECT_EQ(loader.clips_too_short(), 1);  // the 16-frame clip
  for (int n = 0; n < 5; ++n) {
    auto b = loader.next();
    ASSERT_EQ(b.motion.sizes(), (c10::IntArrayRef{8, 20, 262}));
    for (int k = 0; k < 8; ++k) {
      const auto& src = f.clips[b.clip[k]].motion;
      ASSERT_LT(b.person[k], src.size(1));
      auto want = (src.narrow(0, b.start[k], 20).select(1, b.person[k]) - 3.f) / 2.f;
      EXPECT_TRUE(torch::allclose(b.motion[k], want)) << "batch " << n << " item " << k;
    }
  }
}

TEST(DataLoader, WindowsDeterministicAcrossThreadCounts) {
  Fixture f;
  WindowLoader a(f.ds, f.norm, window_opts(0)), b(f.ds, f.norm, window_opts(3));
  auto o = window_opts(1);
  o.seed = 43;
  WindowLoader c(f.ds, f.norm, o);
  bool differs = false;
  for (int n = 0; n < 6; ++n) {
    auto x = a.next(), y = b.next(), z = c.next();
    EXPECT_TRUE(torch::equal(x.motion, y.motion));
    EXPECT_EQ(x.start, y.start);
    differs |= !torch::equal(x.motion, z.motion);
  }
  EXPECT_TRUE(differs);
}

TEST(DataLoader, WindowShardsTogetherAreTheGlobalBatch) {
  Fixture f;
  WindowLoader whole(f.ds, f.norm, window_opts(0));
  std::vector<std::unique_ptr<WindowLoader>> shards;
  for (int r = 0; r < 4; ++r) {
    auto o = window_opts(r % 2);
    o.shard_rank = r;
    o.shard_count = 4;
    shards.push_back(std::make_unique<WindowLoader>(f.ds, f.norm, o));
  }
  for (int n = 0; n < 5; ++n) {
    auto g = whole.next();
    std::vector<torch::Tensor> parts;
    std::vector<int64_t> starts;
    for (auto& s : shards) {
      auto b = s->next();
      ASSERT_EQ(b.motion.size(0), 2);
      parts.push_back(b.motion);
      starts.insert(starts.end(), b.start.begin(), b.start.end());
    }
    EXPECT_TRUE(torch::equal(torch::cat(parts), g.motion)) << "batch " << n;
    EXPECT_EQ(starts, g.start);
  }
  EXPECT_EQ(shards[3]->state(), whole.state());  // the position is the global batch's
  auto o = window_opts(0);
  o.shard_count = 3;  // 8 windows do not split over 3 ranks
  try {
    WindowLoader bad(f.ds, f.norm, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.batch_size=8 does not split evenly over 3 ranks"), std::string::npos)
        << e.what();
  }
}

TEST(DataLoader, WindowsResumeExactly) {
  Fixture f;
  const int N = 10;
  std::vector<torch::Tensor> straight;
  {
    WindowLoader l(f.ds, f.norm, window_opts(2));
    for (int i = 0; i < N; ++i) straight.push_back(l.next().motion);
  }
  std::string saved;
  std::vector<torch::Tensor> resumed;
  {
    WindowLoader l(f.ds, f.norm, window_opts(2));
    for (int i = 0; i < N / 2; ++i) resumed.push_back(l.next().motion);
    saved = l.state().dump();  // the worker threads are ahead; the state is the consumer's
  }
  {
    WindowLoader l(f.ds, f.norm, window_opts(1));
    l.load_state(nlohmann::json::parse(saved));
    for (int i = 0; i < N / 2; ++i) resumed.push_back(l.next().motion);
  }
  for (int i = 0; i < N; ++i) EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << i;
}

TEST(DataLoader, WindowsUniformOverPositions) {
  TempDir dir;
  // Windows of 10: clip a has 11 positions, clip b has 31 (single person each).
  write_packed(dir.file("t.h5"), {make_clip("a", 20, 1, 0), make_clip("b", 40, 1, 1)});
  auto o = window_opts(1);
  o.window = 10;
  o.batch_size = 500;
  WindowLoader l(PackedDataset::open(dir.file("t.h5")), Normalizer::identity(), o);
  EXPECT_EQ(l.windows_available(), 42);
  int64_t a = 0, n = 0;
  std::vector<int64_t> starts(31, 0);
  for (int i = 0; i < 40; ++i) {
    auto b = l.next();
    for (size_t k = 0; k < b.clip.size(); ++k, ++n) {
      a += b.clip[k] == 0;
      if (b.clip[k] == 1) ++starts[b.start[k]];
    }
  }
  EXPECT_NEAR(static_cast<double>(a) / n, 11.0 / 42, 0.01);  // 20000 draws: sd 0.003
  for (auto s : starts) EXPECT_GT(s, 300);                   // every start drawn (mean 476)
}

ClipLoaderOptions clip_opts(int workers) {
  ClipLoaderOptions o;
  o.batch_size = 4;
  o.workers = workers;
  o.seed = 5;
  return o;
}

TEST(DataLoader, ClipsCoverEpochWithPaddingAndMasks) {
  Fixture f;
  ClipLoader l(f.ds, f.norm, clip_opts(2));
  EXPECT_EQ(l.batches_per_epoch(), 4);  // 13 clips, last batch of 1
  std::vector<int> seen(13, 0);
  std::vector<int64_t> first_order;
  for (int n = 0; n < 4; ++n) {
    auto b = l.next();
    EXPECT_EQ(b.epoch, 0);
    EXPECT_EQ(b.cursor, n);
    const int64_t B = b.motion.size(0), Tmax = b.motion.size(1);
    EXPECT_EQ(B, n < 3 ? 4 : 1);
    for (int64_t k = 0; k < B; ++k) {
      const auto& c = f.clips[b.clip[k]];
      ++seen[b.clip[k]];
      first_order.push_back(b.clip[k]);
      const int64_t T = c.motion.size(0), P = c.motion.size(1);
      EXPECT_EQ(b.ids[k], c.id);
      EXPECT_EQ(b.captions[k], c.captions);
      EXPECT_EQ(b.lengths[k].item<int64_t>(), T);
      EXPECT_EQ(b.persons[k].item<int64_t>(), P);
      EXPECT_EQ(b.mask[k].sum().item<int64_t>(), T);
      EXPECT_TRUE(torch::allclose(b.motion[k].narrow(0, 0, T).narrow(1, 0, P), (c.motion - 3.f) / 2.f));
      EXPECT_EQ(b.motion[k].narrow(0, T, Tmax - T).abs().sum().item<float>(), 0.f);
      if (P == 1) EXPECT_EQ(b.motion[k].select(1, 1).abs().sum().item<float>(), 0.f);
    }
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  // The next epoch has a different order.
  std::vector<int64_t> second;
  for (int n = 0; n < 4; ++n)
    for (auto i : l.next().clip) second.push_back(i);
  EXPECT_NE(first_order, second);
}

TEST(DataLoader, ClipsResumeExactlyAcrossEpochs) {
  Fixture f;
  const int N = 10;  // 2.5 epochs
  std::vector<std::vector<int64_t>> straight, resumed;
  {
    ClipLoader l(f.ds, f.norm, clip_opts(2));
    for (int i = 0; i < N; ++i) straight.push_back(l.next().clip);
  }
  nlohmann::json saved;
  {
    ClipLoader l(f.ds, f.norm, clip_opts(2));
    for (int i = 0; i < N / 2; ++i) resumed.push_back(l.next().clip);
    saved = l.state();
    EXPECT_EQ(saved["epoch"], 1);
    EXPECT_EQ(saved["cursor"], 1);
  }
  ClipLoader l(f.ds, f.norm, clip_opts(0));
  l.load_state(saved);
  for (int i = 0; i < N / 2; ++i) resumed.push_back(l.next().clip);
  EXPECT_EQ(straight, resumed);
}

TEST(DataLoader, StateMismatchIsAnError) {
  Fixture f;
  ClipLoader l(f.ds, f.norm, clip_opts(1));
  l.next();
  auto s = l.state();
  auto o = clip_opts(1);
  o.batch_size = 5;
  ClipLoader other(f.ds, f.norm, o);
  EXPECT_THROW(other.load_state(s), Error);
  WindowLoader w(f.ds, f.norm, window_opts(0));
  EXPECT_THROW(w.load_state(s), Error);
  s["rng"] = "0000000000000000";
  EXPECT_THROW(ClipLoader(f.ds, f.norm, clip_opts(1)).load_state(s), Error);
}

TEST(DataLoader, PrefetcherDeliversInOrderAndStopsCleanly) {
  Prefetcher<int64_t> p(
      [](int64_t i) {
        if (i == 7) throw Error("item 7 failed");
        return i * i;
      },
      3, 2);
  p.start(0);
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(p.next(), i * i);
  EXPECT_THROW(p.next(), Error);
  p.start(100);  // restart after an error
  EXPECT_EQ(p.next(), 10000);
  // Destroyed with workers blocked on a full queue: must not hang.
}

}  // namespace
}  // namespace vimo::data

// `data prepare` pipeline with an in-test reader: validation (NaN, short, long clips), augmentation
// on train only, stats over train, skipping finished splits, and no half-written files.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/augment.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/prepare.h"

namespace vimo::data {
namespace {

using testing::make_clip;
using testing::TempDir;

// Clips with a valid facing (so long clips can be re-canonicalized): random features whose hips
// put the left side towards +X.
motion::Clip body_clip(const std::string& id, int64_t T,
                                                     std::vector<std::string> caps = {"one waves the left hand"}) {
  auto x = torch::randn({T, 2, 262}) * 0.1;
  for (int64_t p = 0; p < 2; ++p) {
    x.select(1, p).select(1, 3 * 1).fill_(0.1);    // l_hip x
    x.select(1, p).select(1, 3 * 2).fill_(-0.1);   // r_hip x
    x.select(1, p).select(1, 3 * 16).fill_(0.2);   // l_shoulder x
    x.select(1, p).select(1, 3 * 17).fill_(-0.2);  // r_shoulder x
  }
  return {id, x, std::move(caps)};
}

struct FakeSource {
  int reads = 0;
  std::map<std::string, std::vector<motion::Clip>> splits;
  SourceReader reader() {
    return {true, [this](const DataSection&, const std::string& split, SplitReport&) {
              ++reads;
              auto it = splits.find(split);
              if (it == splits.end()) throw Error("split list '" + split + ".txt' is missing");
              return it->second;
            }};
  }
};

DataSection config(const TempDir& dir) {
  DataSection c;
  c.root = dir.path.string();
  c.out = dir.file("packed");
  c.format = "clips";
  return c;
}

TEST(DataPrepare, PacksValidatesAugmentsAndSkipsFinishedWork) {
  TempDir dir;
  torch::manual_seed(1);
  FakeSource src;
  src.splits["train"] = {body_clip("t0", 40), body_clip("t1", 10), body_clip("t2", 650), body_clip("t3", 16)};
  src.splits["val"] = {body_clip("v0", 30), body_clip("v1", 5)};
  src.splits["test"] = {body_clip("s0", 20)};
  auto cfg = config(dir);
  auto rep = prepare_dataset(cfg, src.reader());
  const auto& tr = rep.splits["train"];
  EXPECT_EQ(tr.short_skipped, 1);  // t1
  EXPECT_EQ(tr.pieces_added, 2);   // t2: 300 + 300 + 50
  EXPECT_EQ(tr.augmented, 5);      // mirror copies of t0, t2#0..2, t3
  EXPECT_EQ(tr.clips, 10);
  EXPECT_EQ(rep.splits["val"].clips, 1);  // no augmentation outside train
  EXPECT_EQ(rep.splits["val"].short_skipped, 1);
  EXPECT_TRUE(rep.stats_written);

  auto train = PackedDataset::open(cfg.out + "/train.h5");
  EXPECT_EQ(train.size(), 10);
  EXPECT_EQ(train.attr("short_skipped"), "1");
  EXPECT_EQ(train.index().ids[1], "t2#0");
  EXPECT_EQ(train.index().lengths[3], 50);
  EXPECT_EQ(train.index().ids[5], "t0#mirror");
  EXPECT_EQ(train.index().captions[5], std::vector<std::string>{"one waves the right hand"});
  EXPECT_TRUE(torch::allclose(train.clip(5).motion, mirror_features(src.splits["train"][0].motion)));
  // A later piece is moved back to the canonical frame: root at the XZ origin in its first frame.
  EXPECT_NEAR(train.frames(2)[0][0][0].item<float>(), 0.f, 1e-5);
  EXPECT_NEAR(train.frames(2)[0][0][2].item<float>(), 0.f, 1e-5);
  // Stats are those of train.h5.
  auto want = compute_stats(train, cfg.std_floor);
  auto st = core::SafeTensors::open(cfg.out + "/stats.safetensors");
  EXPECT_TRUE(torch::allclose(st.get("mean"), want.mean));
  EXPECT_EQ(st.metadata().at("config_hash"), rep.config_hash);

  // A rerun with the same config reads nothing and rewrites nothing.
  const auto mtime = std::filesystem::last_write_time(cfg.out + "/train.h5");
  src.reads = 0;
  auto again = prepare_dataset(cfg, src.reader());
  EXPECT_EQ(src.reads, 0);
  EXPECT_TRUE(again.splits["train"].up_to_date && again.splits["val"].up_to_date && again.splits["test"].up_to_date);
  EXPECT_FALSE(again.stats_written);
  EXPECT_EQ(std::filesystem::last_write_time(cfg.out + "/train.h5"), mtime);
  // A changed option rewrites.
  cfg.mirror = false;
  auto changed = prepare_dataset(cfg, src.reader());
  EXPECT_EQ(changed.splits["train"].clips, 5);
  EXPECT_TRUE(changed.stats_written);
}

TEST(DataPrepare, NanClipIsNamedOrSkipped) {
  TempDir dir;
  FakeSource src;
  src.splits["train"] = {body_clip("good", 30), body_clip("broken_07", 30)};
  src.splits["train"][1].motion[12][1][40] = std::nanf("");
  auto cfg = config(dir);
  cfg.splits = {"train"};
  try {
    prepare_dataset(cfg, src.reader());
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("broken_07"), std::string::npos) << m;
    EXPECT_NE(m.find("frame 12"), std::string::npos) << m;
  }
  EXPECT_FALSE(std::filesystem::exists(cfg.out + "/train.h5"));
  cfg.on_invalid = "skip";
  auto rep = prepare_dataset(cfg, src.reader());
  EXPECT_EQ(rep.splits["train"].invalid_skipped, 1);
  EXPECT_EQ(rep.splits["train"].clips, 2);  // good + its mirror
}

TEST(DataPrepare, BadInputErrors) {
  TempDir dir;
  FakeSource src;
  src.splits["train"] = {body_clip("a", 30)};
  src.splits["val"] = {body_clip("b", 8)};  // every clip too short
  auto cfg = config(dir);
  cfg.root = dir.file("missing_root");
  EXPECT_THROW(prepare_dataset(cfg, src.reader()), Error);
  cfg = config(dir);
  try {
    prepare_dataset(cfg, src.reader());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("split 'val'"), std::string::npos) << e.what();
  }
  // train was finished before val failed; val and stats were not half-written.
  EXPECT_TRUE(std::filesystem::exists(cfg.out + "/train.h5"));
  EXPECT_FALSE(std::filesystem::exists(cfg.out + "/val.h5"));
  src.splits.erase("val");
  src.splits["test"] = {body_clip("c", 30)};
  cfg.splits = {"train", "val", "test"};
  EXPECT_THROW(prepare_dataset(cfg, src.reader()), Error);  // the reader reports the missing split
  for (const auto& e : std::filesystem::directory_iterator(cfg.out))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(DataPrepare, UnsplitSourcesAreSplitByIdAndStaleTemporariesRemoved) {
  TempDir dir;
  std::vector<motion::Clip> all;
  for (int i = 0; i < 200; ++i) all.push_back(body_clip("clip" + std::to_string(i), 20, {}));
  SourceReader r{false, [&](const DataSection&, const std::string& split, SplitReport&) {
                   EXPECT_EQ(split, "");
                   return all;
                 }};
  auto cfg = config(dir);
  cfg.mirror = false;
  cfg.val_fraction = cfg.test_fraction = 0.1;
  std::filesystem::create_directories(cfg.out);
  std::ofstream(cfg.out + "/train.h5.tmp123.45") << "half";
  auto rep = prepare_dataset(cfg, r);
  EXPECT_FALSE(std::filesystem::exists(cfg.out + "/train.h5.tmp123.45"));
  const int64_t n = rep.splits["train"].clips + rep.splits["val"].clips + rep.splits["test"].clips;
  EXPECT_EQ(n, 200);
  EXPECT_GT(rep.splits["val"].clips, 5);
  EXPECT_GT(rep.splits["test"].clips, 5);
  // The assignment depends on the id only: the same clips land in val again in another folder.
  TempDir other;
  auto cfg2 = cfg;
  cfg2.out = other.file("p");
  auto rep2 = prepare_dataset(cfg2, r);
  EXPECT_EQ(PackedDataset::open(cfg.out + "/val.h5").index().ids,
            PackedDataset::open(cfg2.out + "/val.h5").index().ids);
}

}  // namespace
}  // namespace vimo::data

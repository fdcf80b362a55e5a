// Packed HDF5 splits: round trip in both read modes, atomic writes, errors naming file and dataset,
// and feature statistics against values computed independently with torch.
#include <gtest/gtest.h>

#include <fstream>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/normalizer.h"
#include "vimo/data/packed.h"

namespace vimo::data {
namespace {

using testing::make_clip;
using testing::TempDir;

std::vector<motion::Clip> sample_clips() {
  return {make_clip("a", 20, 2, 1, {"two people shake hands", "they greet"}),
          make_clip("b/solo", 17, 1, 2, {"a person waves"}),  // one person in a two-person file
          make_clip("c", 33, 2, 3, {})};
}

TEST(DataPacked, RoundTripBothModes) {
  TempDir dir;
  const auto path = dir.file("train.h5");
  auto clips = sample_clips();
  write_packed(path, clips, {{"split", "train"}, {"config_hash", "abc"}});
  for (auto mode : {PackedDataset::Mode::kMemory, PackedDataset::Mode::kSlices}) {
    auto ds = PackedDataset::open(path, mode);
    ASSERT_EQ(ds.size(), 3);
    EXPECT_EQ(ds.total_frames(), 20 + 17 + 33);
    EXPECT_EQ(ds.persons(), 2);
    EXPECT_EQ(ds.attr("split"), "train");
    EXPECT_EQ(ds.attr("config_hash"), "abc");
    EXPECT_EQ(ds.attr("format_version"), "1");
    EXPECT_EQ(ds.attr("missing", "none"), "none");
    const auto& ix = ds.index();
    EXPECT_EQ(ix.offsets, (std::vector<int64_t>{0, 20, 37}));
    EXPECT_EQ(ix.lengths, (std::vector<int64_t>{20, 17, 33}));
    EXPECT_EQ(ix.persons, (std::vector<int32_t>{2, 1, 2}));
    for (int i = 0; i < 3; ++i) {
      auto c = ds.clip(i);
      EXPECT_EQ(c.id, clips[i].id);
      EXPECT_EQ(c.captions, clips[i].captions);
      EXPECT_TRUE(torch::equal(c.motion, clips[i].motion)) << c.id;
    }
    // The absent second person of the single-person clip is zero-filled.
    EXPECT_EQ(ds.frames(1).select(1, 1).abs().sum().item<float>(), 0.f);
    // A slice inside a clip.
    EXPECT_TRUE(torch::equal(ds.frames(2, 5, 10), clips[2].motion.narrow(0, 5, 10)));
    EXPECT_THROW(ds.frames(2, 30, 10), Error);
  }
}

TEST(DataPacked, FailedWriteLeavesNothing) {
  TempDir dir;
  const auto path = dir.file("val.h5");
  auto clips = sample_clips();
  clips.push_back({"bad", torch::zeros({10, 3, 262}), {}});  // three persons: rejected
  EXPECT_THROW(write_packed(path, clips), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

TEST(DataPacked, ErrorsNameFileAndDataset) {
  TempDir dir;
  try {
    PackedDataset::open(dir.file("nope.h5"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.h5"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("vimo data prepare"), std::string::npos);
  }
  std::ofstream(dir.file("text.h5")) << "not hdf5";
  try {
    PackedDataset::open(dir.file("text.h5"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("text.h5"), std::string::npos);
  }
}

TEST(DataStats, MatchTorchOverPresentPersons) {
  TempDir dir;
  auto clips = sample_clips();
  // Vary the channels so the std is not trivial.
  torch::manual_seed(3);
  for (auto& c : clips) c.motion = torch::randn_like(c.motion) * 2 + 5;
  clips[0].motion.select(2, 100).fill_(7);  // a constant channel in clip a ...
  clips[1].motion.select(2, 100).fill_(7);  // ... and in the rest: std 0 -> floor
  clips[2].motion.select(2, 100).fill_(7);
  write_packed(dir.file("train.h5"), clips);
  auto s = compute_stats(PackedDataset::open(dir.file("train.h5")), 0.01);
  // Reference: every present person's frames stacked, population mean/std.
  auto rows = torch::cat({clips[0].motion.reshape({-1, 262}), clips[1].motion.reshape({-1, 262}),
                          clips[2].motion.reshape({-1, 262})})
                  .to(torch::kDouble);
  EXPECT_EQ(s.frames, rows.size(0));
  auto mean = rows.mean(0);
  auto sd = (rows - mean).pow(2).mean(0).sqrt().clamp_min(0.01);
  EXPECT_TRUE(torch::allclose(s.mean.to(torch::kDouble), mean, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(s.std.to(torch::kDouble), sd, 1e-5, 1e-5));
  EXPECT_FLOAT_EQ(s.std[100].item<float>(), 0.01f);

  save_stats(dir.file("stats.safetensors"), s, {{"config_hash", "x"}});
  auto st = core::SafeTensors::open(dir.file("stats.safetensors"));
  EXPECT_EQ(st.metadata().at("config_hash"), "x");
  auto norm = Normalizer::load(dir.file("stats.safetensors"));
  auto x = clips[0].motion;
  auto z = norm.normalize(x);
  EXPECT_TRUE(torch::allclose(z, (x - s.mean) / s.std));
  EXPECT_TRUE(torch::allclose(norm.denormalize(z), x, 1e-5, 1e-4));
}

TEST(DataStats, LoadRejectsBadFiles) {
  TempDir dir;
  core::save_safetensors(dir.file("s.safetensors"), {{"mean", torch::zeros({262})}});
  EXPECT_THROW(Normalizer::load(dir.file("s.safetensors")), Error);
  core::save_safetensors(dir.file("z.safetensors"), {{"mean", torch::zeros({262})}, {"std", torch::zeros({262})}});
  EXPECT_THROW(Normalizer::load(dir.file("z.safetensors")), Error);
}

}  // namespace
}  // namespace vimo::data

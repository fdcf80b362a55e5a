// Token caches: round trip of codes, ids, captions (unicode included), lengths and persons in both
// stored code widths; named errors for missing, garbled and inconsistent files; check_layout.
#include <gtest/gtest.h>

#include <fstream>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/data/h5.h"
#include "vimo/data/token_cache.h"

namespace vimo::data {
namespace {

using testing::error_message;
using testing::TempDir;

TokenCacheContents sample(int64_t K) {
  TokenCacheContents c;
  c.info.codebook_size = K;
  c.info.num_quantizers = 3;
  c.info.downsample = 4;
  c.info.tokenizer_run = "runs/tok-demo";
  c.info.tokenizer_checkpoint = "runs/tok-demo/best";
  c.info.source = "data/packed/synthetic/test.h5";
  torch::manual_seed(7);
  auto add = [&](std::string id, int64_t steps, int persons, std::vector<std::string> caps) {
    TokenClip t;
    t.id = std::move(id);
    t.codes = torch::randint(K, {steps, 2, 3}, torch::kLong);
    if (persons == 1) t.codes.select(1, 1).zero_();
    t.frames = steps * 4 - 1;
    t.persons = persons;
    t.captions = std::move(caps);
    c.clips.push_back(std::move(t));
  };
  add("a", 5, 2, {"two people shake hands", "они здороваются", "握手 🤝"});
  add("b/solo", 1, 1, {});
  add("c", 9, 2, {"é\nnot a separator"});
  return c;
}

void expect_same(const TokenCacheContents& want, const TokenCache& got) {
  ASSERT_EQ(got.size(), static_cast<int64_t>(want.clips.size()));
  EXPECT_EQ(got.persons_dim(), 2);
  EXPECT_EQ(got.info().codebook_size, want.info.codebook_size);
  EXPECT_EQ(got.info().num_quantizers, 3);
  EXPECT_EQ(got.info().downsample, 4);
  EXPECT_EQ(got.info().tokenizer_run, "runs/tok-demo");
  EXPECT_EQ(got.info().tokenizer_checkpoint, "runs/tok-demo/best");
  EXPECT_EQ(got.info().source, "data/packed/synthetic/test.h5");
  for (int64_t i = 0; i < got.size(); ++i) {
    const auto& w = want.clips[i];
    auto g = got.clip(i);
    EXPECT_EQ(g.id, w.id);
    EXPECT_EQ(got.id(i), w.id);
    EXPECT_EQ(g.codes.scalar_type(), torch::kLong);
    EXPECT_EQ(g.codes.sizes(), w.codes.sizes());
    EXPECT_TRUE(torch::equal(g.codes, w.codes)) << w.id;
    EXPECT_EQ(g.frames, w.frames);
    EXPECT_EQ(g.persons, w.persons);
    EXPECT_EQ(g.captions, w.captions);
    EXPECT_EQ(got.find(w.id), std::optional<int64_t>(i));
  }
  EXPECT_EQ(got.find("absent"), std::nullopt);
}

TEST(DataTokenCache, RoundTripInt16Codes) {
  TempDir dir;
  const auto c = sample(300);
  write_token_cache(dir.file("t.h5"), c);
  expect_same(c, TokenCache::open(dir.file("t.h5")));
}

TEST(DataTokenCache, RoundTripCodesBeyondInt16) {
  TempDir dir;
  auto c = sample(40000);
  c.clips[0].codes[0][0][0] = 39999;  // would wrap in int16
  write_token_cache(dir.file("t.h5"), c);
  auto got = TokenCache::open(dir.file("t.h5"));
  EXPECT_EQ(got.clip(0).codes[0][0][0].item<int64_t>(), 39999);
  expect_same(c, got);
}

TEST(DataTokenCache, RewriteReplacesAndBadContentsWriteNothing) {
  TempDir dir;
  const auto path = dir.file("t.h5");
  write_token_cache(path, sample(300));
  auto c = sample(300);
  c.clips.pop_back();
  write_token_cache(path, c);
  EXPECT_EQ(TokenCache::open(path).size(), 2);

  auto bad = sample(300);
  bad.clips[1].codes[0][0][0] = 300;  // outside 0..K-1
  const auto fresh = dir.file("fresh.h5");
  auto e = error_message([&] { write_token_cache(fresh, bad); });
  EXPECT_NE(e.find("b/solo"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(fresh));
  // No temporary left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator{}), 1);
}

TEST(DataTokenCache, MissingAndGarbledFilesAreNamed) {
  TempDir dir;
  auto e = error_message([&] { TokenCache::open(dir.file("nope.h5")); });
  EXPECT_NE(e.find("nope.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("vimo tokenizer encode"), std::string::npos) << e;

  std::ofstream(dir.file("text.h5")) << "not hdf5";
  e = error_message([&] { TokenCache::open(dir.file("text.h5")); });
  EXPECT_NE(e.find("text.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("not a readable HDF5 file"), std::string::npos) << e;

  // A truncated copy of a good cache.
  write_token_cache(dir.file("good.h5"), sample(300));
  const auto bytes = std::filesystem::file_size(dir.file("good.h5"));
  std::filesystem::copy_file(dir.file("good.h5"), dir.file("cut.h5"));
  std::filesystem::resize_file(dir.file("cut.h5"), bytes / 2);
  e = error_message([&] { TokenCache::open(dir.file("cut.h5")); });
  EXPECT_NE(e.find("cut.h5"), std::string::npos) << e;

  // HDF5 files that are not (complete) token caches.
  const h5::Kind kind{"token cache", "test"};
  auto layout = [](h5::File& f) {  // version 2, K=16, Q=3, x4
    f.set_attr("format_version", int64_t{2});
    f.set_attr("codebook_size", int64_t{16});
    f.set_attr("num_quantizers", int64_t{3});
    f.set_attr("downsample", int64_t{4});
  };
  {
    auto f = h5::File::create(dir.file("v1.h5"), kind);
    f.set_attr("format_version", int64_t{1});
  }
  e = error_message([&] { TokenCache::open(dir.file("v1.h5")); });
  EXPECT_NE(e.find("format_version 1"), std::string::npos) << e;
  EXPECT_NE(e.find("vimo tokenizer encode"), std::string::npos) << e;
  {
    auto f = h5::File::create(dir.file("range.h5"), kind);
    f.write("codes", torch::full({2, 2, 3}, 20, torch::kShort));  // K is 16
    f.write("offsets", std::vector<int64_t>{0});
    f.write("lengths", std::vector<int64_t>{2});
    f.write("frames", std::vector<int64_t>{8});
    f.write("persons", std::vector<int32_t>{2});
    f.write_strings("ids", {"x"});
    f.write_strings("captions", {});
    f.write("caption_offsets", std::vector<int64_t>{0, 0});
    layout(f);
  }
  e = error_message([&] { TokenCache::open(dir.file("range.h5")); });
  EXPECT_NE(e.find("range.h5"), std::string::npos) << e;
  EXPECT_NE(e.find("'codes'"), std::string::npos) << e;
  EXPECT_NE(e.find("outside 0..15"), std::string::npos) << e;
  {
    auto f = h5::File::create(dir.file("nocodes.h5"), kind);
    layout(f);
  }
  e = error_message([&] { TokenCache::open(dir.file("nocodes.h5")); });
  EXPECT_NE(e.find("'codes': missing"), std::string::npos) << e;
}

TEST(DataTokenCache, CheckLayoutNamesBothLayoutsAndTheFix) {
  TempDir dir;
  write_token_cache(dir.file("t.h5"), sample(300));
  auto c = TokenCache::open(dir.file("t.h5"));
  c.check_layout(300, 3, "tokenizer run 'runs/tok-demo'");  // the same layout: accepted
  const auto e = error_message([&] { c.check_layout(512, 6, "tokenizer run 'runs/tok-big'"); });
  for (const char* part : {"t.h5", "K=300", "Q=3", "K=512", "Q=6", "runs/tok-big", "runs/tok-demo",
                           "vimo tokenizer encode --run", "data/packed/synthetic/test.h5"})
    EXPECT_NE(e.find(part), std::string::npos) << part << " not in: " << e;
  EXPECT_NE(error_message([&] { c.check_layout(300, 4, "x"); }), "(no error)");
}

}  // namespace
}  // namespace vimo::data

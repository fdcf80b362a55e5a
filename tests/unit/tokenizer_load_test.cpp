// MotionTokenizer::load: the model is rebuilt from the architecture stored with the weights (the
// run's config.yaml only fills keys older runs did not store, leniently), and bad runs are named.
#include <gtest/gtest.h>

#include <fstream>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/module_io.h"
#include "vimo/tokenizer/tokenizer.h"

namespace vimo::tokenizer {
namespace {

using data::testing::error_message;
using data::testing::TempDir;

RqvaeOptions tiny() {
  RqvaeOptions o;
  o.width = 16;
  o.depth = 1;
  o.dilation_growth = 2;
  o.code_dim = 8;
  o.codebook_size = 16;
  o.num_quantizers = 3;
  o.root_relative = false;
  return o;
}

void write(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A run directory with best/ holding `m`'s weights and `meta`, and config.yaml `config`.
void make_run(const std::filesystem::path& run, Rqvae& m, const std::map<std::string, std::string>& meta,
              const std::string& config) {
  std::filesystem::create_directories(run / "best");
  core::save_safetensors((run / "best/model.safetensors").string(), core::module_weights(*m), meta);
  write(run / "best/DONE", "");
  write(run / "config.yaml", config);
}

TEST(TokenizerLoad, ArchitectureComesFromTheWeightsNotConfigYaml) {
  TempDir dir;
  torch::manual_seed(3);
  Rqvae m(tiny());
  m->eval();
  // A config.yaml of a newer vimo: a key this one does not know and a conflicting width.
  make_run(dir.path / "run", m, architecture_metadata(tiny()),
           "model:\n  width: 999\n  attention_heads: 4\nfuture_section:\n  x: 1\n");
  auto tok = MotionTokenizer::load((dir.path / "run").string());
  EXPECT_EQ(tok.options().width, 16);
  EXPECT_EQ(tok.options().dilation_growth, 2);
  EXPECT_EQ(tok.options().num_quantizers, 3);
  EXPECT_FALSE(tok.options().root_relative);
  EXPECT_EQ(tok.checkpoint(), (dir.path / "run/best").string());
  EXPECT_EQ(tok.metadata().at("width"), "16");
  EXPECT_EQ(tok.trained_on(), "");
  auto clip = torch::randn({12, 2, 262});
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(tok.encode(clip), m->encode(clip.permute({1, 0, 2})).permute({1, 0, 2})));
}

TEST(TokenizerLoad, KeysMissingFromOlderMetadataAreReadLenientlyFromConfigYaml) {
  TempDir dir;
  Rqvae m(tiny());
  // The metadata of runs made before every architecture key was stored.
  const std::map<std::string, std::string> old{{"format", kRqvaeFormat}, {"feature_dim", "262"},
                                               {"codebook_size", "16"},  {"num_quantizers", "3"},
                                               {"code_dim", "8"},        {"root_relative", "false"}};
  make_run(dir.path / "run", m, old,
           "run:\n  dir: x\ndata:\n  packed: data/packed/synthetic\n  new_data_key: 1\n"
           "model:\n  width: 16\n  depth: 1\n  dilation_growth: 2\n  new_model_key: true\n");
  auto tok = MotionTokenizer::load((dir.path / "run").string());
  EXPECT_EQ(tok.options().width, 16);
  EXPECT_EQ(tok.options().depth, 1);
  EXPECT_EQ(tok.options().codebook_size, 16);
  EXPECT_EQ(tok.trained_on(), "data/packed/synthetic");
  EXPECT_EQ(tok.metadata().at("depth"), "1");  // completed from config.yaml
}

TEST(TokenizerLoad, BadRunsAreNamedWithTheFix) {
  TempDir dir;
  const auto missing = (dir.path / "nope").string();
  auto e = error_message([&] { MotionTokenizer::load(missing); });
  EXPECT_NE(e.find(missing), std::string::npos) << e;
  EXPECT_NE(e.find("vimo tokenizer train"), std::string::npos) << e;

  const auto empty = dir.path / "empty";
  write(empty / "config.yaml", "model:\n  width: 16\n");
  write(empty / "checkpoints/step_00000010/model.safetensors", "");  // no DONE: incomplete
  e = error_message([&] { MotionTokenizer::load(empty.string()); });
  EXPECT_NE(e.find("no complete checkpoint"), std::string::npos) << e;
  EXPECT_NE(e.find(empty.string()), std::string::npos) << e;

  const auto broken = dir.path / "broken";
  write(broken / "best/model.safetensors", "not a safetensors file");
  write(broken / "best/DONE", "");
  e = error_message([&] { MotionTokenizer::load(broken.string()); });
  EXPECT_NE(e.find((broken / "best/model.safetensors").string()), std::string::npos) << e;
  EXPECT_NE(e.find("damaged"), std::string::npos) << e;

  // Weights of another architecture than their metadata says.
  Rqvae m(tiny());
  auto meta = architecture_metadata(tiny());
  meta["width"] = "32";
  make_run(dir.path / "mismatch", m, meta, "");
  e = error_message([&] { MotionTokenizer::load((dir.path / "mismatch").string()); });
  EXPECT_NE(e.find("cannot load tokenizer weights"), std::string::npos) << e;
}

}  // namespace
}  // namespace vimo::tokenizer

// Config loading: inheritance, overrides, typing, unknown keys, ranges, dumping.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vimo/core/config.h"
#include "vimo/core/run.h"

namespace fs = std::filesystem;
using namespace vimo::core;

namespace {
struct TrainSec {
  double lr = 1e-3;
  int64_t steps = 100;
  std::vector<int64_t> milestones{10, 20};
  std::string schedule = "cosine";
  template <class V> void visit(V& v) {
    v.key("lr", lr, "learning rate", opt().min(0));
    v.key("steps", steps, "steps", opt().min(1));
    v.key("milestones", milestones, "step decay milestones");
    v.key("schedule", schedule, "schedule", opt().one_of({"cosine", "step"}));
  }
};
struct ModelSec {
  int codebook_size = 512;
  bool shared = true;
  template <class V> void visit(V& v) {
    v.key("codebook_size", codebook_size, "codes per layer", opt().min(2).architecture());
    v.key("shared", shared, "share weights");
  }
};
struct Cfg {
  RunSection run;
  TrainSec train;
  ModelSec model;
  template <class V> void visit(V& v) {
    v.section("run", run);
    v.section("train", train);
    v.section("model", model);
  }
};

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vimo_cfg_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "sub");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const vimo::Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};
}  // namespace

TEST_F(ConfigTest, DefaultsWhenEmpty) {
  Cfg c = resolve_config<Cfg>(ConfigSource());
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.model.codebook_size, 512);
  EXPECT_EQ(c.run.device, "auto");
}

TEST_F(ConfigTest, BaseInheritanceAndOverrides) {
  write("base.yaml", "train:\n  lr: 0.5\n  steps: 7\nmodel:\n  codebook_size: 64\n");
  const auto child = write("sub/child.yaml", "base: ../base.yaml\ntrain:\n  steps: 9\n");
  auto src = ConfigSource::from_files({child});
  src.apply_overrides({"train.lr=3e-4", "model.shared=false", "train.milestones=[1, 2, 3]", "run.dir=runs/x"});
  Cfg c = resolve_config<Cfg>(src);
  EXPECT_DOUBLE_EQ(c.train.lr, 3e-4);           // override beats file
  EXPECT_EQ(c.train.steps, 9);                  // child beats base
  EXPECT_EQ(c.model.codebook_size, 64);         // inherited from base
  EXPECT_FALSE(c.model.shared);
  EXPECT_EQ(c.train.milestones, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(c.run.dir, "runs/x");
}

TEST_F(ConfigTest, UnknownKeyNamesKeyFileLineAndSuggestion) {
  const auto f = write("bad.yaml", "train:\n  lr: 0.1\n  stpes: 5\n");
  const std::string msg = error_of([&] { resolve_config<Cfg>(ConfigSource::from_files({f})); });
  EXPECT_NE(msg.find("unknown config key 'train.stpes'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(f), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train.steps'"), std::string::npos) << msg;
}

TEST_F(ConfigTest, UnknownOverrideKey) {
  ConfigSource src;
  src.apply_override("trian.lr=1");
  const std::string msg = error_of([&] { resolve_config<Cfg>(src); });
  EXPECT_NE(msg.find("'trian.lr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("command line"), std::string::npos) << msg;
}

TEST_F(ConfigTest, TypeErrors) {
  const auto f = write("t.yaml", "train:\n  steps: 1.5\n");
  std::string msg = error_of([&] { resolve_config<Cfg>(ConfigSource::from_files({f})); });
  EXPECT_NE(msg.find("'train.steps'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  ConfigSource s;
  s.apply_override("model.shared=maybe");
  msg = error_of([&] { resolve_config<Cfg>(s); });
  EXPECT_NE(msg.find("true or false"), std::string::npos) << msg;
  ConfigSource s2;
  s2.apply_override("train.lr=fast");
  EXPECT_NE(error_of([&] { resolve_config<Cfg>(s2); }).find("expected a number"), std::string::npos);
  ConfigSource s3;
  s3.apply_override("train.milestones=[1, x]");
  EXPECT_NE(error_of([&] { resolve_config<Cfg>(s3); }).find("list of integers"), std::string::npos);
}

TEST_F(ConfigTest, RangeAndChoices) {
  ConfigSource s;
  s.apply_override("train.lr=-1");
  EXPECT_NE(error_of([&] { resolve_config<Cfg>(s); }).find("out of range"), std::string::npos);
  ConfigSource s2;
  s2.apply_override("train.schedule=linear");
  const auto msg = error_of([&] { resolve_config<Cfg>(s2); });
  EXPECT_NE(msg.find("not one of: cosine, step"), std::string::npos) << msg;
}

TEST_F(ConfigTest, MalformedYamlAndMissingFile) {
  const auto f = write("m.yaml", "train:\n  lr: [1, 2\n");
  const auto msg = error_of([&] { ConfigSource::from_files({f}); });
  EXPECT_NE(msg.find("not valid YAML"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { ConfigSource::from_files({(dir_ / "nope.yaml").string()}); }).find("does not exist"),
            std::string::npos);
  const auto loop = write("loop.yaml", "base: loop.yaml\n");
  EXPECT_NE(error_of([&] { ConfigSource::from_files({loop}); }).find("loops"), std::string::npos);
}

TEST_F(ConfigTest, DumpRoundTripsAndArchitectureOverlay) {
  ConfigSource s;
  s.apply_overrides({"train.lr=0.25", "model.codebook_size=128"});
  Cfg c = resolve_config<Cfg>(s);
  const std::string text = dump_config(c);
  EXPECT_NE(text.find("# learning rate"), std::string::npos);
  // The dump is itself a valid config that resolves to the same values.
  const auto f = write("dump.yaml", text);
  Cfg c2 = resolve_config<Cfg>(ConfigSource::from_files({f}));
  EXPECT_DOUBLE_EQ(c2.train.lr, 0.25);
  EXPECT_EQ(c2.model.codebook_size, 128);
  // A resumed run takes architecture keys from its saved config, but command-line overrides win.
  EXPECT_EQ(architecture_keys<Cfg>(), (std::vector<std::string>{"model.codebook_size"}));
  ConfigSource resumed = ConfigSource::from_files({write("new.yaml", "model:\n  codebook_size: 32\n")});
  resumed.overlay(YAML::LoadFile(f), architecture_keys<Cfg>(), "saved run config");
  EXPECT_EQ(resolve_config<Cfg>(resumed).model.codebook_size, 128);
  resumed.apply_override("model.codebook_size=999");
  EXPECT_EQ(resolve_config<Cfg>(resumed).model.codebook_size, 999);
}

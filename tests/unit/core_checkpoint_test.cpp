// Checkpoint manager (atomic dirs, DONE, keep-k, latest, best, resume discovery) and metrics files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/metrics.h"

namespace fs = std::filesystem;
using namespace vimo::core;

namespace {
fs::path tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("vimo_ck_" + std::to_string(::getpid()) + "_" + tag);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
void put(const std::string& dir, const std::string& name, const std::string& text) {
  std::ofstream(fs::path(dir) / name) << text;
}
}  // namespace

TEST(Checkpoints, SaveKeepLatestAndBest) {
  auto d = tmpdir("keep");
  CheckpointManager m(d.string(), 2);
  EXPECT_FALSE(m.latest().has_value());
  for (int s : {100, 200, 300}) {
    const auto dir = m.save(s, [&](const std::string& tmp) { put(tmp, "state.json", std::to_string(s)); });
    EXPECT_EQ(fs::path(dir).filename(), CheckpointManager::step_name(s));
    EXPECT_TRUE(fs::exists(fs::path(dir) / "DONE"));
  }
  auto all = m.complete();
  ASSERT_EQ(all.size(), 2u);  // keep_last = 2 removed step 100
  EXPECT_EQ(CheckpointManager::step_of(all[0]), 200);
  EXPECT_EQ(read_file((d / "latest").string()), "checkpoints/step_00000300\n");
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 300);
  m.mark_best(all[0]);
  EXPECT_EQ(read_file((d / "best" / "state.json").string()), "200");
  m.mark_best(all[1]);
  EXPECT_EQ(read_file((d / "best" / "state.json").string()), "300");
  EXPECT_FALSE(fs::exists(d / "best.tmp"));
  fs::remove_all(d);
}

TEST(Checkpoints, FailedSaveLeavesNoCheckpoint) {
  auto d = tmpdir("fail");
  CheckpointManager m(d.string(), 0);
  m.save(10, [&](const std::string& tmp) { put(tmp, "a", "x"); });
  EXPECT_THROW(m.save(20, [&](const std::string& tmp) {
    put(tmp, "a", "half");
    throw vimo::Error("disk full");
  }), vimo::Error);
  EXPECT_EQ(m.complete().size(), 1u);
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 10);
  EXPECT_FALSE(fs::exists(d / "checkpoints" / "step_00000020"));
  EXPECT_FALSE(fs::exists(d / "checkpoints" / "step_00000020.tmp"));
  fs::remove_all(d);
}

TEST(Checkpoints, ResumeDiscoveryIgnoresIncomplete) {
  auto d = tmpdir("disc");
  CheckpointManager m(d.string(), 0);
  m.save(5, [](const std::string&) {});
  m.save(7, [](const std::string&) {});
  // A crash mid-write leaves a directory without DONE and a `latest` naming it.
  fs::create_directories(d / "checkpoints" / "step_00000009");
  write_file_atomic((d / "latest").string(), "checkpoints/step_00000009\n");
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 7);
  // `latest` lost entirely: the highest complete step wins.
  fs::remove(d / "latest");
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 7);
  fs::remove(d / "checkpoints" / "step_00000007" / "DONE");
  EXPECT_EQ(CheckpointManager::step_of(*m.latest()), 5);
  fs::remove_all(d);
}

TEST(Checkpoints, UnwritableRunDirIsAClearError) {
  auto d = tmpdir("unwritable");
  put(d.string(), "file", "x");  // a file where the run directory should be
  CheckpointManager m((d / "file" / "run").string(), 1);
  try {
    m.save(1, [](const std::string&) {});
    FAIL() << "expected an error";
  } catch (const vimo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create directory"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(Metrics, Crc32cKnownValues) {
  // RFC 3720 test vectors for CRC32C (iSCSI).
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
}

TEST(Metrics, JsonlResumeDropsLinesAfterResumeStep) {
  auto d = tmpdir("jsonl");
  {
    MetricsWriter w(d.string());
    for (int s = 1; s <= 5; ++s) w.write(s, {{"loss", 1.0 / s}});
  }
  { MetricsWriter w(d.string(), 3); w.write(4, {{"loss", 9.0}}); }
  std::ifstream in(d / "metrics.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3]["step"], 4);
  EXPECT_DOUBLE_EQ(lines[3]["loss"].get<double>(), 9.0);
  EXPECT_TRUE(fs::is_directory(d / "tb"));
  fs::remove_all(d);
}

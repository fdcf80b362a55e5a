// Small fixtures shared by unit tests: temporary folders, synthetic clips, error messages, rm -rf.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "vimo/core/error.h"
#include "vimo/motion/clip.h"

namespace vimo::data::testing {

// A fresh folder under the system temp dir, removed when the object goes away.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::mt19937_64 rng{std::random_device{}()};
    path = std::filesystem::temp_directory_path() / ("vimo_data_test_" + std::to_string(rng()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    try {  // the error_code overload of remove_all resolves into libtorch.so and crashes
      std::filesystem::remove_all(path);
    } catch (...) {
    }
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A clip whose every value encodes (clip, frame, person, channel), so misplaced frames are caught.
inline motion::Clip make_clip(const std::string& id, int64_t T, int64_t P, float tag,
                              std::vector<std::string> captions = {}) {
  auto t = torch::arange(T, torch::kFloat32).view({T, 1, 1});
  auto p = torch::arange(P, torch::kFloat32).view({1, P, 1});
  auto c = torch::arange(motion::kFeatureDim, torch::kFloat32).view({1, 1, motion::kFeatureDim});
  return {id, tag * 1000.f + t + 0.25f * p + 0.001f * c, std::move(captions)};
}

// Removes a folder tree by `rm -rf` (std::filesystem::remove_all's error_code overload resolves into
// libtorch.so and crashes).
inline void rm_rf(const std::filesystem::path& p) { std::system(("rm -rf '" + p.string() + "'").c_str()); }

// The message of the vimo::Error that `f` throws, or "(no error)".
inline std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace vimo::data::testing

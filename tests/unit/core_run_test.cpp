// Smoke test: LibTorch links and runs with the configured thread count.
#include <gtest/gtest.h>

#include "vimo/core/run.h"

TEST(CoreRun, ThreadsAndDevice) {
  EXPECT_EQ(vimo::core::apply_threads(1), 1);
  EXPECT_EQ(vimo::core::resolve_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(vimo::core::resolve_device("gpu7"), vimo::Error);
}

// Reading InterHuman features from a .npy file given on a command line or in a chat, with the
// file, its shape and the expected layout named when it is not a motion.
#pragma once
#include <filesystem>
#include <string>

#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/motion/features.h"

namespace vimo::motion {

// features .npy [T, P, 262] or [T, 262] (one person) -> float [T, P, 262], T >= 4, finite. `persons`
// 1 or 2 demands that many; 0 accepts 1 to `max_persons` (groups: up to 8).
inline torch::Tensor load_features_npy(const std::string& path, int persons, int max_persons = 2) {
  VIMO_CHECK(std::filesystem::exists(path), "motion file '" + path + "' does not exist");
  auto f = core::load_npy(path).to(torch::kFloat);
  if (f.dim() == 2) f = f.unsqueeze(1);
  const bool count_ok = f.dim() == 3 && (persons == 0 ? (f.size(1) >= 1 && f.size(1) <= max_persons) : f.size(1) == persons);
  const std::string d = std::to_string(kFeatureDim), pair = "[T, 2, " + d + "] (a pair)",
                    one = "[T, " + d + "] or [T, 1, " + d + "] (one person)",
                    group = "[T, P, " + d + "] with P 1.." + std::to_string(max_persons) + " or [T, " + d + "]";
  VIMO_CHECK(count_ok && f.size(2) == kFeatureDim && f.size(0) >= 4,
             "motion file '" + path + "' has shape " + c10::str(f.sizes()) + "; expected InterHuman features " +
                 (persons == 2 ? pair : persons == 1 ? one : max_persons > 2 ? group : pair + " or " + one) + ", T >= 4");
  check_finite(f, path);
  return f;
}

}  // namespace vimo::motion

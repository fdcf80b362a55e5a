// The set-up every training recipe shares: device, threads, seed, run directory, trainer options.
#pragma once
#include <string>

#include "vimo/core/run.h"
#include "vimo/train/trainer.h"

namespace vimo::train {

// Resolves run.device, applies run.threads and run.seed, opens the run directory (log.txt and the
// resolved config.yaml). Returns the device.
torch::Device setup_run(const core::RunSection& run, const std::string& resolved_yaml);

// Trainer options from a recipe's sections.
TrainerOptions trainer_options(const core::RunSection& run, const TrainSection& train, const OptimSection& optim,
                               torch::Device device, const std::string& tag);

}  // namespace vimo::train

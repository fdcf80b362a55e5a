// The set-up every training recipe shares: launch environment and process group, device, threads,
// seed, log level, run directory, trainer options.
#pragma once
#include <string>

#include "vimo/core/run.h"
#include "vimo/train/distributed.h"
#include "vimo/train/trainer.h"

namespace vimo::train {

// Resolves run.device (cuda:LOCAL_RANK on a multi-rank CUDA launch), applies run.threads, run.seed
// and run.log_level, joins the process group when launched on several processes (torchrun, Slurm),
// opens the run directory (this rank's log file; rank 0 writes the resolved config.yaml). Returns the
// device.
torch::Device setup_run(const core::RunSection& run, const DistSection& dist, const std::string& resolved_yaml);

// Trainer options from a recipe's sections.
TrainerOptions trainer_options(const core::RunSection& run, const TrainSection& train, const OptimSection& optim,
                               const DistSection& dist, torch::Device device, const std::string& tag);

}  // namespace vimo::train

// `vimo data prepare --config configs/data/<name>.yaml [data.key=value ...] [--force]`.
#include <chrono>

#include "command.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/core/schemas.h"
#include "vimo/data/prepare.h"

namespace vimo::cli {
namespace {

core::SchemaRegistrar<data::DataConfig> schema("data");

struct PrepareArgs {
  ConfigOptions config;
  bool force = false;
};

Registrar reg(20, [](CLI::App& app) {
  auto* g = group(app, "data", "datasets: synthetic data, packing into HDF5, inspection");
  auto a = std::make_shared<PrepareArgs>();
  auto* c = g->add_subcommand("prepare", "pack a dataset into <data.out>/{train,val,test}.h5 and stats.safetensors");
  add_config_options(c, a->config);
  c->add_flag("--force", a->force, "rewrite outputs even when they are up to date");
  c->callback([a] {
    data::DataConfig cfg;
    if (!resolve(a->config, cfg)) return;
    core::install_stop_handlers();
    log::info("data prepare: ", cfg.data.format, " from '", cfg.data.root, "' -> '", cfg.data.out, "'");
    const auto t0 = std::chrono::steady_clock::now();
    const auto rep = data::prepare_dataset(cfg.data, a->force);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (const auto& [split, r] : rep.splits)
      log::info(split, r.up_to_date ? ": up to date"
                                    : ": " + std::to_string(r.clips) + " clips, " + std::to_string(r.frames) +
                                          " frames, " + std::to_string(r.short_skipped) + " short clips skipped");
    log::info("done in ", s, " s (config hash ", rep.config_hash, ")");
  });
});

}  // namespace
}  // namespace vimo::cli

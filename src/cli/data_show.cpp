// `vimo data show FILE.h5 [--json] [--clip ID --out clip.npy]`: summary of a packed split, or one clip.
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/packed.h"

namespace vimo::cli {
namespace {

struct ShowArgs {
  std::string file, clip, out;
  bool json = false;
};

Registrar reg(21, [](CLI::App& app) {
  auto* g = group(app, "data", "datasets: synthetic data, packing into HDF5, inspection");
  auto a = std::make_shared<ShowArgs>();
  auto* c = g->add_subcommand("show", "summarise a packed split (.h5), or export one clip as .npy");
  c->add_option("file", a->file, "packed split, e.g. data/packed/synthetic/train.h5")->required();
  c->add_flag("--json", a->json, "print the attributes and the whole index as JSON");
  c->add_option("--clip", a->clip, "id of a clip to export (with --out)");
  c->add_option("--out", a->out, ".npy file for --clip: [T, P, 262] float32");
  c->callback([a] {
    auto ds = data::PackedDataset::open(a->file, data::PackedDataset::Mode::kSlices);
    const auto& ix = ds.index();
    if (!a->clip.empty()) {
      if (a->out.empty()) throw Error("--clip needs --out FILE.npy");
      auto it = std::find(ix.ids.begin(), ix.ids.end(), a->clip);
      if (it == ix.ids.end()) throw Error("no clip '" + a->clip + "' in '" + a->file + "' (see `vimo data show FILE`)");
      core::save_npy(a->out, ds.clip(it - ix.ids.begin()).motion);
      std::cout << "wrote " << a->out << "\n";
      return;
    }
    if (a->json) {
      nlohmann::json j = {{"file", a->file},         {"frames", ds.total_frames()},
                          {"persons", ds.persons()}, {"attrs", ds.attrs()},
                          {"ids", ix.ids},           {"offsets", ix.offsets},
                          {"lengths", ix.lengths},   {"clip_persons", ix.persons},
                          {"captions", ix.captions}};
      std::cout << j.dump(1) << "\n";
      return;
    }
    int64_t captioned = 0, lmin = ix.size() ? ix.lengths[0] : 0, lmax = 0;
    for (int64_t i = 0; i < ix.size(); ++i) {
      captioned += !ix.captions[i].empty();
      lmin = std::min(lmin, ix.lengths[i]);
      lmax = std::max(lmax, ix.lengths[i]);
    }
    std::cout << a->file << ": " << ix.size() << " clips, " << ds.total_frames() << " frames [" << ds.total_frames()
              << ", " << ds.persons() << ", 262], lengths " << lmin << ".." << lmax << ", " << captioned
              << " with captions\n";
    for (const auto& [k, v] : ds.attrs()) std::cout << "  " << k << " = " << v << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli

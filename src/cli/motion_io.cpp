// `vimo motion convert` (a dataset -> a clips folder of <id>.npy [T, P, 262] + <id>.txt captions),
// `vimo motion import` (1 to 8 BVH files, one per person -> a clip) and `vimo motion export` (a clip ->
// one BVH file per person).
#include <filesystem>
#include <iostream>
#include <memory>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/bvh.h"
#include "vimo/motion/clips.h"
#include "vimo/motion/features_npy.h"
#include "vimo/motion/io.h"
#include "vimo/motion/synth_group.h"

namespace vimo::cli {
namespace {

struct Convert {
  std::string format, root, split = "train", out;
  motion::ReadOptions read;
};

Registrar reg(32, [](CLI::App& app) {
  auto* g = group(app, "motion", "motion data: features, readers, import and renders");
  auto o = std::make_shared<Convert>();
  auto* c = g->add_subcommand("convert", "read a dataset and write its clips as a clips folder");
  c->add_option("root", o->root, "dataset root folder")->required();
  c->add_option("--format", o->format, "dataset format")
      ->required()
      ->check(CLI::IsMember({"interhuman", "interx", "humanml3d", "clips"}));
  c->add_option("--split", o->split, "split to read (train, val, test)");
  c->add_option("--out", o->out, "output folder")->required();
  c->add_option("--min-frames", o->read.min_frames, "skip clips shorter than this (feature frames)");
  c->add_option("--max-frames", o->read.max_frames, "keep at most this many frames per clip (0: all)");
  c->add_option("--limit", o->read.limit, "read at most this many clips (0: all)");
  c->add_flag("--strict", o->read.strict, "fail when files of some listed clips are missing");
  c->callback([o] {
    core::ensure_writable_dir(o->out);
    motion::ReadStats stats;
    auto clips = motion::read_dataset(o->format, o->root, o->split, o->read, &stats);
    for (const auto& clip : clips) motion::write_clip(o->out, clip);
    std::cout << o->format << " " << o->root << " (" << o->split << "): " << stats.summary() << "\n"
              << "wrote " << clips.size() << " clips to " << o->out << "\n";
  });
});

struct Import {
  std::string a, b, out, up = "y";
  double scale = 0;
  int skip = 0;
  std::vector<std::string> persons, maps, captions;
};

Registrar reg_import(31, [](CLI::App& app) {
  auto* g = group(app, "motion", "motion data: features, readers, import and renders");
  auto o = std::make_shared<Import>();
  auto* c = g->add_subcommand("import", "BVH files, one per person (1 to 8, or --a/--b) -> clip [T-1, P, 262] at 30 fps");
  c->add_option("bvh,--person", o->persons, "the persons' .bvh files in order A, B, C, ... (repeatable; same time span)");
  c->add_option("--a", o->a, "person A .bvh (instead of the list)");
  c->add_option("--b", o->b, "person B .bvh (with --a; same time span as A)");
  c->add_option("--out", o->out, "output clip .npy (captions go to the same name with .txt)")->required();
  c->add_option("--scale", o->scale, "metres per file unit (default: detect; CMU cgspeed 0.056444)");
  c->add_option("--skip-frames", o->skip, "leading frames to drop (CMU cgspeed files start with a T-pose)");
  c->add_option("--up", o->up, "up axis of the files")->check(CLI::IsMember({"y", "z"}));
  c->add_option("--map", o->maps, "SMPL joint = BVH joint, e.g. l_wrist=LeftHand (repeatable)");
  c->add_option("--caption", o->captions, "caption(s) stored next to the clip (repeatable)");
  c->callback([o] {
    motion::BvhImportOptions io;
    io.scale = o->scale;
    io.skip_frames = o->skip;
    io.up = o->up[0];
    for (const auto& m : o->maps) {
      auto eq = m.find('=');
      VIMO_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < m.size(),
                 "--map '" + m + "': expected SMPL_JOINT=BVH_JOINT, e.g. l_wrist=LeftHand");
      io.mapping[m.substr(0, eq)] = m.substr(eq + 1);
    }
    VIMO_CHECK(o->a.empty() || o->persons.empty(), "give the persons either as --a/--b or as a list of .bvh files, not both");
    VIMO_CHECK(o->b.empty() || !o->a.empty(), "--b needs --a (person A)");
    auto files = o->persons;
    if (!o->a.empty()) files = {o->a};
    if (!o->b.empty()) files.push_back(o->b);
    VIMO_CHECK(!files.empty(), "give the persons' BVH files: vimo motion import A.bvh [B.bvh ...] --out clip.npy");
    auto clip = motion::import_bvh(files, io);
    namespace fs = std::filesystem;
    fs::path out(o->out);
    VIMO_CHECK(out.extension() == ".npy", "--out '" + o->out + "' must end in .npy");
    clip.id = out.stem().string();
    clip.captions = o->captions;
    motion::write_clip(out.parent_path().empty() ? "." : out.parent_path().string(), clip);
    std::cout << "wrote " << o->out << " [" << clip.motion.size(0) << ", " << clip.motion.size(1) << ", 262]\n";
  });
});

struct Export {
  std::string in, out;
};

Registrar reg_export(31, [](CLI::App& app) {
  auto* g = group(app, "motion", "motion data: features, readers, import and renders");
  auto o = std::make_shared<Export>();
  auto* c = g->add_subcommand("export", "features .npy [T, P, 262] -> one BVH file per person (<prefix>_A.bvh, _B, ...)");
  c->add_option("in", o->in, "features .npy [T, P, 262] (P 1..8) or [T, 262]")->required();
  c->add_option("--out", o->out, "file prefix (out/take -> out/take_A.bvh) or folder (out/ -> out/<in stem>_A.bvh)")->required();
  c->callback([o] {
    auto f = motion::load_features_npy(o->in, 0, motion::kMaxGroupPersons);
    auto prefix = motion::bvh_prefix(o->out, std::filesystem::path(o->in).stem().string());
    for (const auto& p : motion::export_features_bvh(prefix, f)) std::cout << "wrote " << p << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli

// `vimo motion render CLIP --out x.gif|x.mp4|x.html [--caption TEXT]`: draws a clip's skeletons.
// CLIP: features [T, P, 262] (.npy) or joints [T, P, 22, 3] / [T, 22, 3].
#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/motion/render.h"

namespace vimo::cli {
namespace {

struct Args {
  std::string clip, out;
  motion::RenderOptions opt;
};

Registrar reg(31, [](CLI::App& app) {
  auto* g = group(app, "motion", "motion representation, conversion and rendering");
  auto a = std::make_shared<Args>();
  auto* c = g->add_subcommand("render", "render a clip as an animated GIF, an MP4 (needs ffmpeg) or an HTML viewer");
  c->add_option("clip", a->clip, "features [T, P, 262] or joints [T, P, 22, 3] as .npy")->required()->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "output file: .gif, .mp4 or .html")->required();
  c->add_option("--caption", a->opt.caption, "title text");
  c->add_option("--width", a->opt.width, "image width in pixels")->default_val(480);
  c->add_option("--height", a->opt.height, "image height in pixels")->default_val(360);
  c->add_option("--fps", a->opt.fps, "frame rate of the clip")->default_val(30.0);
  c->add_option("--gif-stride", a->opt.gif_stride, "GIF keeps every n-th frame")->default_val(2);
  c->callback([a] {
    auto joints = motion::load_render_input(a->clip);
    motion::render_file(joints, a->out, a->opt);
    log::info("wrote ", a->out, " (", joints.size(0), " frames, ", joints.size(1), " person(s))");
  });
});

}  // namespace
}  // namespace vimo::cli

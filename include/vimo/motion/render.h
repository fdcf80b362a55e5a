// Renders of two-person (or one-person) skeleton motion: animated GIF (own encoder), MP4 through
// the ffmpeg program, and a self-contained interactive HTML viewer.
#pragma once
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vimo::motion {

struct RenderOptions {
  int width = 480;
  int height = 360;
  double fps = 30.0;    // frame rate of the joints
  int gif_stride = 2;   // GIF keeps every n-th frame (GIF delays are in 1/100 s)
  std::string caption;  // drawn as the title
};

// An indexed-colour image sequence: one byte per pixel, values index kRenderPalette.
struct IndexedFrames {
  int width = 0, height = 0;
  std::vector<std::vector<uint8_t>> frames;
};
using Rgb = std::array<uint8_t, 3>;
const std::vector<Rgb>& render_palette();  // 32 colours (five persons' sets)

// joints: [T, P, 22, 3] (or [T, 22, 3]) Y-up metres. Draws every `stride`-th frame from a fixed 3/4
// camera that frames the whole clip, over a ground grid, with shadows and the caption as title.
IndexedFrames rasterize_motion(const torch::Tensor& joints, const RenderOptions& opt, int stride = 1);

// GIF89a, looping, global palette, LZW-coded frames. delays_cs: one delay per frame in 1/100 s.
std::string encode_gif(const IndexedFrames& f, const std::vector<Rgb>& palette, const std::vector<int>& delays_cs);

void render_gif(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt);
// Needs `ffmpeg` on PATH; throws a vimo::Error saying how to get it otherwise.
void render_mp4(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt);
std::string html_viewer(const torch::Tensor& joints, const RenderOptions& opt);
// & < > " as HTML entities (text and attribute values).
std::string html_escape(const std::string& s);
void render_html(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt);
// Picks the format from the extension of `path` (.gif, .mp4, .html/.htm).
void render_file(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt);

// Draws `text` with the built-in 5x7 font at (x, y) scaled by `scale`; returns the width in pixels.
int draw_text(std::vector<uint8_t>& img, int w, int h, int x, int y, const std::string& text, uint8_t colour,
              int scale);
int text_width(const std::string& text, int scale);

}  // namespace vimo::motion

namespace vimo::motion {
// Reads a clip for rendering: .npy features [T, P, 262] (positions recovered with features_to_joints),
// [T, 262], joints [T, P, 22, 3] or [T, 22, 3] -> joints [T, P, 22, 3] float32.
torch::Tensor load_render_input(const std::string& path);
}  // namespace vimo::motion

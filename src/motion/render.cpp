// Software rasterizer for skeleton renders: fixed 3/4 perspective camera, ground grid, shadows,
// depth-sorted thick bones, per-person colours (left limbs lighter), caption title; plus MP4 via ffmpeg.
#include "vimo/motion/render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/clip.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {
namespace {

// Palette slots. Person p uses person_slot(p) + {0: right side, 1: left side, 2: midline}: A and B at 5
// and 8 (as ever), C, D, E of a group at 16, 19, 22; a sixth person takes A's colours again.
enum : uint8_t { kBg = 0, kGrid = 1, kGridAxis = 2, kShadow = 3, kText = 4, kPersonBase = 5, kOutline = 11 };
uint8_t person_slot(int64_t p) {
  static const uint8_t slots[] = {5, 8, 16, 19, 22};
  return slots[p % 5];
}

struct V3 {
  double x, y, z;
};
V3 operator-(V3 a, V3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
V3 operator+(V3 a, V3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
V3 operator*(V3 a, double s) { return {a.x * s, a.y * s, a.z * s}; }
double dot(V3 a, V3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
V3 cross(V3 a, V3 b) { return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x}; }
V3 unit(V3 a) {
  double n = std::sqrt(dot(a, a));
  return n > 1e-12 ? a * (1.0 / n) : V3{0, 0, 1};
}

struct Camera {
  V3 eye, right, up, fwd;
  double scale = 1, ox = 0, oy = 0;
  void look(V3 target, V3 from_dir, double dist) {
    eye = target + from_dir * dist;
    fwd = unit(target - eye);
    right = unit(cross(fwd, V3{0, 1, 0}));
    up = cross(right, fwd);
  }
  V3 view(V3 p) const {  // camera space: x right, y up, z depth (> 0 in front)
    V3 d = p - eye;
    return {dot(d, right), dot(d, up), dot(d, fwd)};
  }
  bool project(V3 p, double& sx, double& sy, double& depth) const {
    V3 v = view(p);
    depth = v.z;
    if (v.z < 0.05) return false;
    sx = ox + scale * v.x / v.z;
    sy = oy - scale * v.y / v.z;
    return true;
  }
};

struct Canvas {
  int w, h;
  std::vector<uint8_t>& px;
  void disc(double cx, double cy, double r, uint8_t c) {
    int x0 = std::max(0, static_cast<int>(std::floor(cx - r))), x1 = std::min(w - 1, static_cast<int>(std::ceil(cx + r)));
    int y0 = std::max(0, static_cast<int>(std::floor(cy - r))), y1 = std::min(h - 1, static_cast<int>(std::ceil(cy + r)));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x)
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) px[static_cast<size_t>(y) * w + x] = c;
  }
  // A thick line as a run of discs; r < 0.75 draws single pixels.
  void line(double ax, double ay, double bx, double by, double r, uint8_t c) {
    double len = std::hypot(bx - ax, by - ay);
    if (len > 8.0 * (w + h)) return;  // degenerate projection: skip rather than stall
    int n = std::max(1, static_cast<int>(std::ceil(len / std::max(0.5, r * 0.5))));
    for (int i = 0; i <= n; ++i) {
      double t = static_cast<double>(i) / n, x = ax + (bx - ax) * t, y = ay + (by - ay) * t;
      if (r >= 0.75) {
        disc(x, y, r, c);
      } else {
        int xi = static_cast<int>(std::lround(x)), yi = static_cast<int>(std::lround(y));
        if (xi >= 0 && yi >= 0 && xi < w && yi < h) px[static_cast<size_t>(yi) * w + xi] = c;
      }
    }
  }
};

int side_of(int j) {  // 0 right, 1 left, 2 midline
  const char* n = kJointNames[j];
  return n[0] == 'r' && n[1] == '_' ? 0 : n[0] == 'l' && n[1] == '_' ? 1 : 2;
}

std::vector<std::string> wrap(const std::string& text, size_t max_chars) {
  std::vector<std::string> lines;
  std::string cur, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!cur.empty() && cur.size() + 1 + word.size() > max_chars) lines.push_back(cur), cur.clear();
    cur += (cur.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t') flush();
    else word += c;
  }
  flush();
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

}  // namespace

const std::vector<Rgb>& render_palette() {
  static const std::vector<Rgb> p = {
      {250, 250, 247}, {212, 212, 205}, {170, 170, 162}, {203, 203, 197}, {25, 25, 25},
      {22, 72, 165},   {110, 170, 240}, {45, 115, 205},   // person A: right, left, midline
      {185, 60, 10},   {248, 165, 85},  {225, 110, 30},   // person B
      {55, 55, 55},    {120, 120, 120}, {90, 90, 90},     {238, 238, 231}, {255, 255, 255},
      {20, 120, 60},   {110, 205, 130}, {45, 160, 85},    // person C
      {110, 40, 150},  {190, 140, 225}, {150, 80, 195},   // person D
      {0, 120, 130},   {90, 200, 205},  {30, 160, 170},   // person E
      {0, 0, 0},       {0, 0, 0},       {0, 0, 0},        {0, 0, 0},      {0, 0, 0},     {0, 0, 0}, {0, 0, 0}};
  return p;
}

IndexedFrames rasterize_motion(const torch::Tensor& joints_in, const RenderOptions& opt, int stride) {
  VIMO_CHECK(joints_in.defined() && (joints_in.dim() == 4 || joints_in.dim() == 3),
             "render: joints must be [T, P, 22, 3] or [T, 22, 3]");
  auto j = (joints_in.dim() == 3 ? joints_in.unsqueeze(1) : joints_in).to(torch::kFloat64).contiguous();
  VIMO_CHECK(j.size(2) == kNumJoints && j.size(3) == 3,
             "render: joints must be [T, P, 22, 3], got " + c10::str(joints_in.sizes()));
  VIMO_CHECK(j.size(0) > 0 && j.size(1) > 0, "render: the clip has no frames or no persons");
  VIMO_CHECK(torch::isfinite(j).all().item<bool>(), "render: joints contain NaN or inf");
  VIMO_CHECK(opt.width >= 64 && opt.height >= 64 && opt.width <= 4096 && opt.height <= 4096,
             "render: image size must be 64..4096 pixels per side");
  const int64_t T = j.size(0), P = j.size(1), N = T * P * kNumJoints;
  const double* J = j.data_ptr<double>();
  auto at = [&](int64_t t, int64_t p, int k) {
    const double* q = J + ((t * P + p) * kNumJoints + k) * 3;
    return V3{q[0], q[1], q[2]};
  };
  const int W = opt.width, H = opt.height, ts = std::max(1, W / 320);
  auto lines = wrap(opt.caption, static_cast<size_t>(std::max(8, (W - 16) / (6 * ts))));
  if (lines.size() > 4) lines.resize(4), lines.back() += " ...";
  const int title_h = lines.empty() ? 4 : static_cast<int>(lines.size()) * 9 * ts + 8;

  V3 lo{1e9, 1e9, 1e9}, hi{-1e9, -1e9, -1e9};
  for (int64_t i = 0; i < N; ++i) {
    lo = {std::min(lo.x, J[i * 3]), std::min(lo.y, J[i * 3 + 1]), std::min(lo.z, J[i * 3 + 2])};
    hi = {std::max(hi.x, J[i * 3]), std::max(hi.y, J[i * 3 + 1]), std::max(hi.z, J[i * 3 + 2])};
  }
  const double floor_y = std::min(0.0, lo.y);
  V3 centre{(lo.x + hi.x) / 2, (std::max(hi.y, 1.0) + floor_y) / 2, (lo.z + hi.z) / 2};
  // The camera looks at the pair side-on (person A on the left), turned 35 degrees towards A's
  // front and raised 22 degrees: both faces and the gap between the bodies stay visible.
  V3 a0 = at(0, 0, 0), facing;
  {
    V3 across = at(0, 0, kRightHip) - at(0, 0, kLeftHip);
    facing = unit(cross(V3{across.x, 0, across.z}, V3{0, 1, 0}));  // body faces +Z with left at +X
  }
  V3 axis = facing;
  if (P > 1) {
    V3 d = at(0, 1, 0) - a0;
    d.y = 0;
    if (dot(d, d) > 0.01) axis = unit(d);
  }
  V3 side = unit(cross(V3{0, 1, 0}, axis));
  const double az = 35.0 * M_PI / 180.0, el = 22.0 * M_PI / 180.0;
  const double extent = std::max({hi.x - lo.x, hi.z - lo.z, hi.y - floor_y, 2.0}), dist = extent * 2.2 + 2.0;
  Camera cam;
  auto place = [&](double s) {
    V3 h = unit(side * (s * std::cos(az)) + axis * std::sin(az));
    if (P == 1) h = unit(facing * std::cos(az) + side * std::sin(az));
    cam.look(centre, unit(h * std::cos(el) + V3{0, 1, 0} * std::sin(el)), dist);
  };
  place(1.0);
  if (P > 1 && dot(a0 - centre, cam.right) > 0) place(-1.0);

  const double cell = 0.5;  // ground grid in 0.5 m cells around everything that moves
  const double gx0 = std::floor((lo.x - 0.75) / cell) * cell, gx1 = std::ceil((hi.x + 0.75) / cell) * cell;
  const double gz0 = std::floor((lo.z - 0.75) / cell) * cell, gz1 = std::ceil((hi.z + 0.75) / cell) * cell;
  double bx0 = 1e9, bx1 = -1e9, by0 = 1e9, by1 = -1e9;
  auto grow = [&](V3 p) {
    V3 v = cam.view(p);
    if (v.z < 0.05) return;
    bx0 = std::min(bx0, v.x / v.z), bx1 = std::max(bx1, v.x / v.z);
    by0 = std::min(by0, v.y / v.z), by1 = std::max(by1, v.y / v.z);
  };
  for (int64_t i = 0; i < N; ++i) grow({J[i * 3], J[i * 3 + 1] + 0.3, J[i * 3 + 2]});
  for (int64_t i = 0; i < N; ++i) grow({J[i * 3], floor_y, J[i * 3 + 2]});
  const double margin = 8;
  cam.scale = std::min((W - 2 * margin) / std::max(1e-6, bx1 - bx0), (H - title_h - 2 * margin) / std::max(1e-6, by1 - by0));
  cam.ox = W / 2.0 - cam.scale * (bx0 + bx1) / 2;
  cam.oy = title_h + margin + (H - title_h - 2 * margin) / 2.0 + cam.scale * (by0 + by1) / 2;

  std::vector<uint8_t> bg(static_cast<size_t>(W) * H, kBg);  // grid and title, shared by all frames
  Canvas bgc{W, H, bg};
  auto grid_line = [&](V3 a, V3 b, bool axis_line) {
    double ax, ay, bx, by, d;
    if (cam.project(a, ax, ay, d) && cam.project(b, bx, by, d))
      bgc.line(ax, ay, bx, by, axis_line ? 0.9 : 0.5, axis_line ? kGridAxis : kGrid);
  };
  for (double x = gx0; x <= gx1 + 1e-9; x += cell) grid_line({x, floor_y, gz0}, {x, floor_y, gz1}, std::abs(x) < 1e-9);
  for (double z = gz0; z <= gz1 + 1e-9; z += cell) grid_line({gx0, floor_y, z}, {gx1, floor_y, z}, std::abs(z) < 1e-9);
  for (size_t i = 0; i < lines.size(); ++i)
    draw_text(bg, W, H, (W - text_width(lines[i], ts)) / 2, 4 + static_cast<int>(i) * 9 * ts, lines[i], kText, ts);

  const double lw = std::max(1.2, W / 220.0);
  IndexedFrames out;
  out.width = W, out.height = H;
  struct Item {
    double depth;
    int p, k;  // k < 0: the head disc
  };
  std::vector<Item> items;
  std::vector<double> sx(static_cast<size_t>(P) * kNumJoints), sy(sx.size()), sd(sx.size());
  std::vector<char> ok(sx.size());
  for (int64_t t = 0; t < T; t += std::max(1, stride)) {
    out.frames.push_back(bg);
    Canvas c{W, H, out.frames.back()};
    items.clear();
    for (int64_t p = 0; p < P; ++p) {
      for (int k = 0; k < kNumJoints; ++k) {
        V3 q = at(t, p, k);
        size_t i = static_cast<size_t>(p) * kNumJoints + k;
        ok[i] = cam.project(q, sx[i], sy[i], sd[i]);
        double gx, gy, gd, hx, hy, hd;
        if (k > 0) {  // shadow: the bone dropped onto the floor
          V3 r = at(t, p, kParents[k]);
          if (cam.project({q.x, floor_y, q.z}, gx, gy, gd) && cam.project({r.x, floor_y, r.z}, hx, hy, hd))
            c.line(gx, gy, hx, hy, lw, kShadow);
        }
      }
      for (int k = 1; k < kNumJoints; ++k) {
        size_t a = static_cast<size_t>(p) * kNumJoints + k, b = static_cast<size_t>(p) * kNumJoints + kParents[k];
        items.push_back({(sd[a] + sd[b]) / 2, static_cast<int>(p), k});
      }
      items.push_back({sd[static_cast<size_t>(p) * kNumJoints + kHead], static_cast<int>(p), -1});
    }
    std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return x.depth > y.depth; });
    for (const auto& it : items) {  // far to near, so nearer limbs cover farther ones
      size_t base = static_cast<size_t>(it.p) * kNumJoints;
      auto col = person_slot(it.p);
      if (it.k < 0) {
        size_t hd = base + kHead;
        if (!ok[hd]) continue;
        double r = cam.scale * 0.085 / sd[hd];
        c.disc(sx[hd], sy[hd], r + 1.0, kOutline);
        c.disc(sx[hd], sy[hd], r, static_cast<uint8_t>(col + 2));
        continue;
      }
      size_t a = base + it.k, b = base + kParents[it.k];
      if (ok[a] && ok[b]) c.line(sx[a], sy[a], sx[b], sy[b], lw * 1.4, static_cast<uint8_t>(col + side_of(it.k)));
    }
    for (int64_t p = 0; P > 1 && p < P; ++p) {  // "A", "B", "C", ... above the heads
      size_t hd = static_cast<size_t>(p) * kNumJoints + kHead;
      if (!ok[hd]) continue;
      double r = cam.scale * 0.085 / sd[hd];
      draw_text(out.frames.back(), W, H, static_cast<int>(sx[hd]) - 3 * ts, static_cast<int>(sy[hd] - r) - 10 * ts,
                std::string(1, static_cast<char>('A' + p % 26)), person_slot(p), ts);
    }
  }
  return out;
}

void render_mp4(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt) {
  VIMO_CHECK(std::system("command -v ffmpeg >/dev/null 2>&1") == 0,
             "render: writing " + path + " needs the ffmpeg program, which is not on PATH; install it "
             "(e.g. apt-get install ffmpeg) or render to .gif or .html instead");
  RenderOptions o = opt;
  o.width += o.width % 2, o.height += o.height % 2;  // yuv420p needs even sizes
  auto frames = rasterize_motion(joints, o, 1);
  const auto& pal = render_palette();
  core::write_atomic(path, [&](const std::string& tmp) {
    char fps[32];
    std::snprintf(fps, sizeof fps, "%g", opt.fps);
    std::string cmd = "ffmpeg -loglevel error -y -f rawvideo -pix_fmt rgb24 -s " + std::to_string(o.width) + "x" +
                      std::to_string(o.height) + " -r " + fps +
                      " -i - -an -pix_fmt yuv420p -c:v libx264 -movflags +faststart -f mp4 '" + tmp + "'";
    FILE* pipe = popen(cmd.c_str(), "w");
    VIMO_CHECK(pipe, "render: could not start ffmpeg for " + path);
    std::vector<uint8_t> rgb(static_cast<size_t>(o.width) * o.height * 3);
    bool ok = true;
    for (const auto& f : frames.frames) {
      for (size_t i = 0; i < f.size(); ++i)
        for (int c = 0; c < 3; ++c) rgb[i * 3 + c] = pal[f[i]][c];
      ok = ok && std::fwrite(rgb.data(), 1, rgb.size(), pipe) == rgb.size();
    }
    int rc = pclose(pipe);
    VIMO_CHECK(ok && rc == 0, "render: ffmpeg failed writing " + path + " (status " + std::to_string(rc) +
                                  "); run it by hand to see why, or render to .gif");
  });
}

void render_gif(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt) {
  VIMO_CHECK(opt.fps > 0, "render: fps must be positive");
  const int stride = std::max(1, opt.gif_stride);
  auto frames = rasterize_motion(joints, opt, stride);
  // Delays in 1/100 s, carrying the rounding remainder so the GIF keeps the clip's real duration.
  std::vector<int> delays;
  double acc = 0;
  for (size_t i = 0; i < frames.frames.size(); ++i) {
    acc += 100.0 * stride / opt.fps;
    int d = std::max(2, static_cast<int>(std::lround(acc)));
    delays.push_back(d);
    acc -= d;
  }
  core::write_file_atomic(path, encode_gif(frames, render_palette(), delays));
}

void render_file(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".gif") return render_gif(joints, path, opt);
  if (ext == ".mp4") return render_mp4(joints, path, opt);
  if (ext == ".html" || ext == ".htm") return render_html(joints, path, opt);
  throw Error("render: unknown output format '" + ext + "' for " + path + "; use .gif, .mp4 or .html");
}

}  // namespace vimo::motion

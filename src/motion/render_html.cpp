// Self-contained interactive HTML viewer: the joints inline as JSON, a canvas and a small script
// (orbit by dragging, zoom with the wheel, play/pause, scrub). Needs no network.
#include <cmath>
#include <cstdio>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/motion/clip.h"
#include "vimo/motion/render.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {

// A JSON string literal that is also safe inside <script> (no "</", no raw control characters).
std::string js_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c == '<') o += "\\u003c";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += static_cast<char>(c);
  }
  return o + "\"";
}

const char* kScript = R"JS(
const cv = document.getElementById('view'), ctx = cv.getContext('2d');
const slider = document.getElementById('scrub'), btn = document.getElementById('play'), lab = document.getElementById('frame');
const T = D.frames, P = D.persons, NJ = 22, J = D.joints;
const side = D.names.map(n => n.startsWith('r_') ? 0 : n.startsWith('l_') ? 1 : 2);
const cols = [['#1648a5', '#6eaaf0', '#2d73cd'], ['#b93c0a', '#f8a555', '#e16e1e'], ['#14783c', '#6ecd82', '#2da055'],
              ['#6e2896', '#be8ce1', '#9650c3'], ['#007882', '#5ac8cd', '#1ea0aa']];
let lo = [1e9, 1e9, 1e9], hi = [-1e9, -1e9, -1e9];
for (let i = 0; i < J.length; i += 3) for (let k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], J[i + k] / 1000); hi[k] = Math.max(hi[k], J[i + k] / 1000); }
const floorY = Math.min(0, lo[1]), ctr = [(lo[0] + hi[0]) / 2, (Math.max(hi[1], 1) + floorY) / 2, (lo[2] + hi[2]) / 2];
const ext = Math.max(hi[0] - lo[0], hi[2] - lo[2], hi[1] - floorY, 2);
let yaw = 0.9, pitch = 0.38, dist = ext * 2.2 + 2, frame = 0, playing = true, last = null, acc = 0;
function P3(t, p, j) { const o = ((t * P + p) * NJ + j) * 3; return [J[o] / 1000, J[o + 1] / 1000, J[o + 2] / 1000]; }
function cam() {
  const e = [ctr[0] + dist * Math.cos(pitch) * Math.sin(yaw), ctr[1] + dist * Math.sin(pitch), ctr[2] + dist * Math.cos(pitch) * Math.cos(yaw)];
  let f = [ctr[0] - e[0], ctr[1] - e[1], ctr[2] - e[2]]; const n = Math.hypot(...f); f = f.map(v => v / n);
  let r = [-f[2], 0, f[0]]; const m = Math.hypot(...r); r = r.map(v => v / m);
  const u = [r[1] * f[2] - r[2] * f[1], r[2] * f[0] - r[0] * f[2], r[0] * f[1] - r[1] * f[0]];
  return {e, f, r, u};
}
function proj(c, q) {
  const d = [q[0] - c.e[0], q[1] - c.e[1], q[2] - c.e[2]];
  const z = d[0] * c.f[0] + d[1] * c.f[1] + d[2] * c.f[2];
  const s = Math.min(cv.width, cv.height) * 1.1;
  return [cv.width / 2 + s * (d[0] * c.r[0] + d[1] * c.r[1] + d[2] * c.r[2]) / z,
          cv.height / 2 - s * (d[0] * c.u[0] + d[1] * c.u[1] + d[2] * c.u[2]) / z, z];
}
function seg(c, a, b, color, w) {
  const p = proj(c, a), q = proj(c, b); if (p[2] < 0.05 || q[2] < 0.05) return;
  ctx.strokeStyle = color; ctx.lineWidth = w; ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
}
function draw() {
  const c = cam(); ctx.fillStyle = '#fafaf7'; ctx.fillRect(0, 0, cv.width, cv.height); ctx.lineCap = 'round';
  const g0x = Math.floor((lo[0] - 0.75) * 2) / 2, g1x = Math.ceil((hi[0] + 0.75) * 2) / 2;
  const g0z = Math.floor((lo[2] - 0.75) * 2) / 2, g1z = Math.ceil((hi[2] + 0.75) * 2) / 2;
  for (let x = g0x; x <= g1x + 1e-9; x += 0.5) seg(c, [x, floorY, g0z], [x, floorY, g1z], '#d4d4cd', 1);
  for (let z = g0z; z <= g1z + 1e-9; z += 0.5) seg(c, [g0x, floorY, z], [g1x, floorY, z], '#d4d4cd', 1);
  const items = [];
  for (let p = 0; p < P; p++) for (let j = 1; j < NJ; j++) {
    const a = P3(frame, p, j), b = P3(frame, p, D.parents[j]);
    seg(c, [a[0], floorY, a[2]], [b[0], floorY, b[2]], '#cbcbc5', 3);
    items.push([(proj(c, a)[2] + proj(c, b)[2]) / 2, p, j, a, b]);
  }
  for (let p = 0; p < P; p++) { const h = P3(frame, p, 15); items.push([proj(c, h)[2], p, -1, h]); }
  items.sort((x, y) => y[0] - x[0]);
  for (const it of items) {
    const col = cols[it[1] % cols.length];
    if (it[2] < 0) {
      const q = proj(c, it[3]); if (q[2] < 0.05) continue;
      const r = Math.min(cv.width, cv.height) * 1.1 * 0.1 / q[2];
      ctx.fillStyle = col[2]; ctx.strokeStyle = '#373737'; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(q[0], q[1], r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      if (P > 1) { ctx.fillStyle = col[0]; ctx.font = 'bold 14px sans-serif'; ctx.fillText(String.fromCharCode(65 + it[1] % 26), q[0] - 5, q[1] - r - 6); }
    } else seg(c, it[3], it[4], col[side[it[2]]], 5);
  }
  slider.value = frame; lab.textContent = 'frame ' + (frame + 1) + ' / ' + T + '  (' + (frame / D.fps).toFixed(2) + ' s)';
}
function tick(ts) {
  if (last !== null && playing) { acc += (ts - last) / 1000 * D.fps; while (acc >= 1) { frame = (frame + 1) % T; acc -= 1; } }
  last = ts; draw(); requestAnimationFrame(tick);
}
slider.max = T - 1;
slider.oninput = () => { frame = +slider.value; playing = false; btn.textContent = 'Play'; };
btn.onclick = () => { playing = !playing; btn.textContent = playing ? 'Pause' : 'Play'; };
let drag = null;
cv.onmousedown = e => { drag = [e.clientX, e.clientY]; };
window.onmouseup = () => { drag = null; };
window.onmousemove = e => { if (!drag) return; yaw -= (e.clientX - drag[0]) * 0.01;
  pitch = Math.max(-0.2, Math.min(1.45, pitch + (e.clientY - drag[1]) * 0.01)); drag = [e.clientX, e.clientY]; };
cv.onwheel = e => { e.preventDefault(); dist = Math.max(1, dist * Math.exp(e.deltaY * 0.001)); };
window.onkeydown = e => { if (e.key === ' ') { btn.onclick(); e.preventDefault(); }
  if (e.key === 'ArrowRight') frame = Math.min(T - 1, frame + 1); if (e.key === 'ArrowLeft') frame = Math.max(0, frame - 1); };
requestAnimationFrame(tick);
)JS";

}  // namespace

std::string html_viewer(const torch::Tensor& joints_in, const RenderOptions& opt) {
  VIMO_CHECK(joints_in.defined() && (joints_in.dim() == 4 || joints_in.dim() == 3),
             "render: joints must be [T, P, 22, 3] or [T, 22, 3]");
  auto j = (joints_in.dim() == 3 ? joints_in.unsqueeze(1) : joints_in).to(torch::kFloat64).contiguous();
  VIMO_CHECK(j.size(2) == kNumJoints && j.size(3) == 3 && j.size(0) > 0,
             "render: joints must be [T, P, 22, 3], got " + c10::str(joints_in.sizes()));
  VIMO_CHECK(torch::isfinite(j).all().item<bool>(), "render: joints contain NaN or inf");
  std::string data = "{\"frames\":" + std::to_string(j.size(0)) + ",\"persons\":" + std::to_string(j.size(1));
  char fps[32];
  std::snprintf(fps, sizeof fps, "%g", opt.fps);
  data += ",\"fps\":" + std::string(fps) + ",\"caption\":" + js_string(opt.caption) + ",\"parents\":[";
  for (int k = 0; k < kNumJoints; ++k) data += (k ? "," : "") + std::to_string(kParents[k]);
  data += "],\"names\":[";
  for (int k = 0; k < kNumJoints; ++k) data += std::string(k ? "," : "") + "\"" + kJointNames[k] + "\"";
  data += "],\"joints\":[";  // millimetres, as integers: small and exact enough to look at
  const double* p = j.data_ptr<double>();
  for (int64_t i = 0; i < j.numel(); ++i) data += (i ? "," : "") + std::to_string(std::lround(p[i] * 1000.0));
  data += "]}";
  std::string title = opt.caption.empty() ? "vimo motion" : opt.caption;
  return "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title>\n<style>body{font-family:sans-serif;margin:12px;background:#f4f4f0}"
         "canvas{background:#fafaf7;border:1px solid #ccc;cursor:grab;max-width:100%}"
         "#bar{display:flex;gap:10px;align-items:center;width:800px;max-width:100%}#scrub{flex:1}</style>"
         "</head><body>\n<h3>" + html_escape(opt.caption) +
         "</h3>\n<canvas id=\"view\" width=\"800\" height=\"560\"></canvas>\n<div id=\"bar\"><button id=\"play\">"
         "Pause</button><input id=\"scrub\" type=\"range\" min=\"0\" value=\"0\"><span id=\"frame\"></span></div>\n"
         "<p style=\"color:#666;font-size:12px\">drag: orbit, wheel: zoom, space: play/pause, arrows: step. "
         "A blue, B orange; left limbs lighter.</p>\n<script>\nconst D = " + data + ";\n" + kScript +
         "</script>\n</body></html>\n";
}

void render_html(const torch::Tensor& joints, const std::string& path, const RenderOptions& opt) {
  core::write_file_atomic(path, html_viewer(joints, opt));
}

}  // namespace vimo::motion

// Renders: frame count and size, both persons' colours drawn, GIF stream structure, HTML viewer content.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "vimo/core/error.h"
#include "vimo/motion/render.h"
#include "vimo/motion/skeleton.h"

namespace vimo::motion {
namespace {

// Two rest-pose bodies 1.5 m apart facing each other, swaying over T frames: [T, 2, 22, 3].
torch::Tensor pair(int T) {
  auto rest = torch::zeros({kNumJoints, 3}, torch::kFloat64);
  for (int j = 0; j < kNumJoints; ++j)
    for (int k = 0; k < 3; ++k) rest[j][k] = kRestOffsets[j][k] + (j ? rest[kParents[j]][k].item<double>() : 0.0);
  auto out = torch::zeros({T, 2, kNumJoints, 3}, torch::kFloat64);
  for (int t = 0; t < T; ++t) {
    out[t][0] = rest + torch::tensor({0.1 * std::sin(t * 0.2), 0.0, 0.0}, torch::kFloat64);
    auto b = rest.clone();
    b.select(1, 0).neg_();
    b.select(1, 2).neg_();  // turned to face -Z
    out[t][1] = b + torch::tensor({0.0, 0.0, 1.5}, torch::kFloat64);
  }
  return out.to(torch::kFloat32);
}

TEST(MotionRender, RasterizesEveryStrideFrameWithBothColours) {
  RenderOptions o;
  o.width = 160, o.height = 120, o.caption = "two people stand";
  auto f = rasterize_motion(pair(9), o, 2);
  ASSERT_EQ(f.frames.size(), 5u);  // frames 0, 2, 4, 6, 8
  ASSERT_EQ(f.frames[0].size(), 160u * 120u);
  std::set<int> used(f.frames[0].begin(), f.frames[0].end());
  EXPECT_TRUE(used.count(5) || used.count(6) || used.count(7)) << "person A's blues";
  EXPECT_TRUE(used.count(8) || used.count(9) || used.count(10)) << "person B's oranges";
  EXPECT_TRUE(used.count(4)) << "title text";
  EXPECT_NE(f.frames[0], f.frames[2]) << "the sway shows";
}

TEST(MotionRender, GifStreamStructure) {
  IndexedFrames f;
  f.width = 3, f.height = 2;
  f.frames = {{0, 1, 2, 3, 4, 5}, {5, 5, 5, 5, 5, 5}};
  auto g = encode_gif(f, render_palette(), {4, 4});
  ASSERT_GT(g.size(), 13u + 48u);
  EXPECT_EQ(g.substr(0, 6), "GIF89a");
  EXPECT_EQ(static_cast<unsigned char>(g[6]), 3);   // width, little-endian
  EXPECT_EQ(static_cast<unsigned char>(g[8]), 2);   // height
  EXPECT_EQ(static_cast<unsigned char>(g[10]), 0xC4);  // global table of 32 colours, 5-bit resolution
  EXPECT_EQ(g.back(), '\x3b');
  EXPECT_NE(g.find("NETSCAPE2.0"), std::string::npos);
  size_t n = 0;
  for (size_t p = 0; (p = g.find("\x21\xf9\x04", p)) != std::string::npos; ++p) ++n;
  EXPECT_EQ(n, 2u);
  EXPECT_THROW(encode_gif(f, render_palette(), {4}), Error);
}

TEST(MotionRender, HtmlViewerIsSelfContained) {
  RenderOptions o;
  o.caption = "a <b>bold</b> caption";
  auto h = html_viewer(pair(4), o);
  EXPECT_EQ(h.find("http"), std::string::npos);
  EXPECT_EQ(h.find("src="), std::string::npos);
  EXPECT_NE(h.find("\"frames\":4"), std::string::npos);
  EXPECT_NE(h.find("a &lt;b&gt;bold&lt;/b&gt; caption"), std::string::npos);
  EXPECT_EQ(h.find("<b>"), std::string::npos);
  EXPECT_NE(h.find("<canvas"), std::string::npos);
}

TEST(MotionRender, RejectsBadInput) {
  RenderOptions o;
  EXPECT_THROW(rasterize_motion(torch::zeros({4, 2, 21, 3}), o), Error);
  auto bad = pair(3);
  bad[1][0][3][1] = std::nan("");
  EXPECT_THROW(rasterize_motion(bad, o), Error);
  EXPECT_THROW(render_file(pair(3), "/tmp/x.bmp", o), Error);
}

}  // namespace
}  // namespace vimo::motion

// GIF89a encoder for indexed frames: global palette, NETSCAPE looping, variable-width LZW codes.
// Format facts from the GIF89a specification (CompuServe, 1990).
#include <algorithm>

#include "vimo/core/error.h"
#include "vimo/motion/render.h"

namespace vimo::motion {
namespace {

void put16(std::string& o, int v) {
  o += static_cast<char>(v & 0xff);
  o += static_cast<char>((v >> 8) & 0xff);
}

// Packs codes LSB-first and cuts the byte stream into sub-blocks of at most 255 bytes.
class BitWriter {
 public:
  explicit BitWriter(std::string& out) : out_(out) {}
  void put(int code, int bits) {
    acc_ |= static_cast<uint32_t>(code) << nbits_;
    nbits_ += bits;
    while (nbits_ >= 8) byte(static_cast<uint8_t>(acc_ & 0xff)), acc_ >>= 8, nbits_ -= 8;
  }
  void finish() {
    if (nbits_ > 0) byte(static_cast<uint8_t>(acc_ & 0xff));
    acc_ = 0, nbits_ = 0;
    flush_block();
    out_ += '\0';  // block terminator
  }

 private:
  void byte(uint8_t b) {
    block_[len_++] = b;
    if (len_ == 255) flush_block();
  }
  void flush_block() {
    if (len_ == 0) return;
    out_ += static_cast<char>(len_);
    out_.append(reinterpret_cast<const char*>(block_), len_);
    len_ = 0;
  }
  std::string& out_;
  uint32_t acc_ = 0;
  int nbits_ = 0;
  uint8_t block_[255];
  int len_ = 0;
};

// LZW with a trie over the alphabet (palette indices): child[code * alphabet + symbol] = code.
void lzw(const std::vector<uint8_t>& px, int min_bits, std::string& out) {
  const int alphabet = 1 << min_bits, clear = alphabet, eoi = alphabet + 1;
  std::vector<int16_t> child(static_cast<size_t>(4096) * alphabet, -1);
  out += static_cast<char>(min_bits);
  BitWriter bw(out);
  int bits = min_bits + 1, next = eoi + 1;
  auto reset = [&] {
    std::fill(child.begin(), child.end(), static_cast<int16_t>(-1));
    bits = min_bits + 1, next = eoi + 1;
  };
  bw.put(clear, bits);
  int cur = px.empty() ? -1 : px[0];
  for (size_t i = 1; i < px.size(); ++i) {
    const int s = px[i];
    int16_t& c = child[static_cast<size_t>(cur) * alphabet + s];
    if (c >= 0) {
      cur = c;
      continue;
    }
    bw.put(cur, bits);
    if (next < 4095) {
      c = static_cast<int16_t>(next);
      // The decoder adds each entry one code later, so widen after the entry numbered 2^bits.
      if (next == (1 << bits) && bits < 12) ++bits;
      ++next;
    } else {
      bw.put(clear, bits);
      reset();
    }
    cur = s;
  }
  if (cur >= 0) bw.put(cur, bits);
  bw.put(eoi, bits);
  bw.finish();
}

}  // namespace

std::string encode_gif(const IndexedFrames& f, const std::vector<Rgb>& palette, const std::vector<int>& delays_cs) {
  VIMO_CHECK(f.width > 0 && f.height > 0 && f.width < 65536 && f.height < 65536, "gif: bad image size");
  VIMO_CHECK(!palette.empty() && palette.size() <= 256, "gif: the palette must have 1..256 colours");
  VIMO_CHECK(delays_cs.size() == f.frames.size(), "gif: one delay per frame is needed");
  int table_bits = 1;
  while ((1 << table_bits) < static_cast<int>(palette.size())) ++table_bits;
  const int min_bits = std::max(2, table_bits);
  std::string o = "GIF89a";
  put16(o, f.width);
  put16(o, f.height);
  o += static_cast<char>(0x80 | ((table_bits - 1) << 4) | (table_bits - 1));  // global table, its size
  o += '\0';                                                                    // background colour
  o += '\0';                                                                    // pixel aspect ratio
  for (int i = 0; i < (1 << table_bits); ++i)
    for (int c = 0; c < 3; ++c) o += static_cast<char>(i < static_cast<int>(palette.size()) ? palette[i][c] : 0);
  o += "\x21\xff\x0bNETSCAPE2.0\x03\x01";  // loop forever
  put16(o, 0);
  o += '\0';
  const size_t npx = static_cast<size_t>(f.width) * f.height;
  for (size_t i = 0; i < f.frames.size(); ++i) {
    VIMO_CHECK(f.frames[i].size() == npx, "gif: frame " + std::to_string(i) + " has the wrong number of pixels");
    for (uint8_t p : f.frames[i])
      VIMO_CHECK(p < palette.size(), "gif: frame " + std::to_string(i) + " uses a colour outside the palette");
    o += "\x21\xf9\x04";
    o += static_cast<char>(0x04);  // disposal: leave the frame in place
    put16(o, delays_cs[i]);
    o += '\0';  // no transparent colour
    o += '\0';
    o += '\x2c';
    put16(o, 0);
    put16(o, 0);
    put16(o, f.width);
    put16(o, f.height);
    o += '\0';  // no local table, not interlaced
    lzw(f.frames[i], min_bits, o);
  }
  o += '\x3b';
  return o;
}

}  // namespace vimo::motion

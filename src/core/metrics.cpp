// metrics.jsonl and TensorBoard event files (tfevents) written without TensorFlow or protobuf.
#include "vimo/core/metrics.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace fs = std::filesystem;

namespace vimo::core {
namespace {
// Castagnoli polynomial, reflected.
struct Crc32cTable {
  uint32_t t[256];
  Crc32cTable() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
  }
};

void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
}
void put_key(std::string& s, int field, int wire) { put_varint(s, (static_cast<uint64_t>(field) << 3) | wire); }
void put_bytes(std::string& s, int field, const std::string& b) {
  put_key(s, field, 2);
  put_varint(s, b.size());
  s += b;
}
template <class T> void put_fixed(std::string& s, int field, T v) {
  put_key(s, field, sizeof(T) == 8 ? 1 : 5);
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  s.append(buf, sizeof(T));
}
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  static const Crc32cTable table;
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) c = table.t[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::string& dir) {
  ensure_writable_dir(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  std::ostringstream name;
  name << "events.out.tfevents." << static_cast<long long>(now_seconds()) << "." << host << "." << ::getpid();
  path_ = (fs::path(dir) / name.str()).string();
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) throw Error("cannot write TensorBoard events to '" + path_ + "'");
  std::string ev;
  put_fixed<double>(ev, 1, now_seconds());
  put_bytes(ev, 3, "brain.Event:2");
  record(ev);
}

void EventWriter::record(const std::string& payload) {
  const uint64_t len = payload.size();
  char head[12];
  std::memcpy(head, &len, 8);
  const uint32_t lc = masked_crc32c(head, 8);
  std::memcpy(head + 8, &lc, 4);
  const uint32_t dc = masked_crc32c(payload.data(), payload.size());
  out_.write(head, 12);
  out_.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  out_.write(reinterpret_cast<const char*>(&dc), 4);
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string val;
  put_bytes(val, 1, tag);
  put_fixed<float>(val, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, val);
  std::string ev;
  put_fixed<double>(ev, 1, now_seconds());
  put_key(ev, 2, 0);
  put_varint(ev, static_cast<uint64_t>(step));
  put_bytes(ev, 5, summary);
  record(ev);
}

void EventWriter::flush() { out_.flush(); }

MetricsWriter::MetricsWriter(const std::string& run_dir, int64_t resume_step)
    : events_((fs::path(run_dir) / "tb").string()) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (resume_step >= 0 && fs::exists(path)) {
    std::istringstream in(read_file(path));
    std::string kept;
    for (std::string line; std::getline(in, line);) {
      try {
        if (nlohmann::json::parse(line).value("step", int64_t{0}) <= resume_step) kept += line + "\n";
      } catch (const nlohmann::json::exception&) {
        // a line cut short by a crash: drop it
      }
    }
    write_file_atomic(path, kept);
  }
  jsonl_.open(path, std::ios::app);
  if (!jsonl_) throw Error("cannot append to '" + path + "'");
}

void MetricsWriter::write(int64_t step, const std::map<std::string, double>& values, const std::string& split) {
  nlohmann::json j;
  j["step"] = step;
  j["split"] = split;
  j["time"] = now_seconds();
  for (const auto& [k, v] : values) {
    j[k] = v;
    events_.scalar(split + "/" + k, v, step);
  }
  jsonl_ << j.dump() << "\n";
}

void MetricsWriter::flush() {
  jsonl_.flush();
  events_.flush();
}

}  // namespace vimo::core

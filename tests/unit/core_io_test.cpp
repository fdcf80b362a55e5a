// safetensors and npy: round trips for every dtype, sharded indexes, and bad files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"

namespace fs = std::filesystem;
using namespace vimo::core;

namespace {
fs::path tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("vimo_io_" + std::to_string(::getpid()) + "_" + tag);
  fs::create_directories(d);
  return d;
}
std::vector<torch::ScalarType> all_types() {
  return {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64, torch::kInt64,
          torch::kInt32,   torch::kInt16,   torch::kInt8,     torch::kUInt8,   torch::kBool};
}
torch::Tensor sample(torch::ScalarType t, std::vector<int64_t> shape) {
  auto x = torch::arange(1, 1 + c10::multiply_integers(shape), torch::kFloat64).reshape(shape);
  if (t == torch::kBool) return (x.remainder(3) == 0);
  if (t == torch::kInt8 || t == torch::kUInt8) return x.remainder(100).to(t);
  return (x * (c10::isFloatingType(t) ? 0.37 : 1.0)).to(t);
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const vimo::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(SafeTensorsIO, RoundTripAllDtypesAndMetadata) {
  auto d = tmpdir("st");
  NamedTensors in;
  int i = 0;
  for (auto t : all_types()) in.emplace_back("t" + std::to_string(i++) + "." + c10::toString(t), sample(t, {3, 5}));
  in.emplace_back("scalar", torch::tensor(2.5));
  in.emplace_back("empty", torch::zeros({0, 4}));
  const auto p = (d / "a.safetensors").string();
  save_safetensors(p, in, {{"format", "pt"}});
  auto st = SafeTensors::open(p);
  EXPECT_EQ(st.names().size(), in.size());
  EXPECT_EQ(st.metadata().at("format"), "pt");
  for (const auto& [name, t] : in) {
    auto r = st.get(name);
    EXPECT_EQ(r.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(r.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(r, t)) << name;
  }
  // Views of the map are copy-on-write: editing one never changes the file.
  auto v = st.get("t0.Float");
  v.fill_(-1);
  EXPECT_TRUE(torch::equal(SafeTensors::open(p).get("t0.Float"), in[0].second));
  fs::remove_all(d);
}

TEST(SafeTensorsIO, ShardedIndex) {
  auto d = tmpdir("shard");
  save_safetensors((d / "m-00001-of-00002.safetensors").string(), {{"a", torch::ones({2})}});
  save_safetensors((d / "m-00002-of-00002.safetensors").string(), {{"b", torch::full({3}, 2.0)}});
  write_file_atomic((d / "m.safetensors.index.json").string(),
                    R"({"metadata": {"total_size": 20}, "weight_map": {"a": "m-00001-of-00002.safetensors",
                        "b": "m-00002-of-00002.safetensors"}})");
  auto st = SafeTensors::open((d / "m.safetensors.index.json").string());
  EXPECT_EQ(st.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_FLOAT_EQ(st.get("b")[2].item<float>(), 2.0f);
  EXPECT_NE(error_of([&] { st.get("c"); }).find("tensor 'c' is not in"), std::string::npos);
  fs::remove_all(d);
}

TEST(SafeTensorsIO, TruncatedAndCorruptFiles) {
  auto d = tmpdir("trunc");
  const auto p = (d / "x.safetensors").string();
  save_safetensors(p, {{"w", torch::randn({64, 64})}});
  const std::string bytes = read_file(p);
  const auto cut = (d / "cut.safetensors").string();
  write_file_atomic(cut, bytes.substr(0, bytes.size() - 100));
  auto msg = error_of([&] { SafeTensors::open(cut); });
  EXPECT_NE(msg.find("tensor 'w'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  write_file_atomic(cut, bytes.substr(0, 20));
  EXPECT_NE(error_of([&] { SafeTensors::open(cut); }).find("header"), std::string::npos);
  write_file_atomic(cut, std::string("\x08\0\0\0\0\0\0\0{bad json", 17));
  EXPECT_NE(error_of([&] { SafeTensors::open(cut); }).find("corrupt JSON header"), std::string::npos);
  fs::remove_all(d);
}

TEST(SafeTensorsIO, AtomicWriteLeavesNothingOnFailure) {
  auto d = tmpdir("atomic");
  const auto p = (d / "keep.safetensors").string();
  save_safetensors(p, {{"a", torch::ones({2})}});
  // A complex tensor cannot be stored: the old file stays and no temporary is left behind.
  EXPECT_THROW(save_safetensors(p, {{"a", torch::zeros({2}, torch::kComplexFloat)}}), vimo::Error);
  EXPECT_TRUE(torch::equal(SafeTensors::open(p).get("a"), torch::ones({2})));
  size_t files = 0;
  for (auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  fs::remove_all(d);
}

TEST(NpyIO, RoundTripAllNumpyDtypes) {
  auto d = tmpdir("npy");
  for (auto t : all_types()) {
    if (t == torch::kBFloat16) continue;  // numpy has no bfloat16
    for (auto shape : std::vector<std::vector<int64_t>>{{7}, {2, 3, 4}, {}}) {
      auto x = sample(t, shape);
      const auto p = (d / "x.npy").string();
      save_npy(p, x);
      auto y = load_npy(p);
      EXPECT_EQ(y.scalar_type(), t);
      EXPECT_TRUE(torch::equal(x, y)) << c10::toString(t);
      // numpy's layout: header padded so the data starts at a multiple of 64.
      const auto bytes = read_file(p);
      const size_t hlen = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
      EXPECT_EQ((10 + hlen) % 64, 0u);
    }
  }
  fs::remove_all(d);
}

TEST(NpyIO, UnsupportedInputsAreNamed) {
  auto d = tmpdir("npybad");
  auto write_npy = [&](const std::string& header_dict, const std::string& data) {
    std::string h = header_dict;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string out = "\x93NUMPY\x01";
    out += '\0';
    out += static_cast<char>(h.size());
    out += '\0';
    const auto p = (d / "bad.npy").string();
    write_file_atomic(p, out + h + data);
    return p;
  };
  auto p = write_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0'));
  EXPECT_NE(error_of([&] { load_npy(p); }).find("Fortran order"), std::string::npos);
  p = write_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0'));
  EXPECT_NE(error_of([&] { load_npy(p); }).find("Python objects"), std::string::npos);
  p = write_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0'));
  EXPECT_NE(error_of([&] { load_npy(p); }).find("big-endian"), std::string::npos);
  p = write_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", std::string(16, '\0'));
  EXPECT_NE(error_of([&] { load_npy(p); }).find("does not read"), std::string::npos);
  p = write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", std::string(16, '\0'));
  EXPECT_NE(error_of([&] { load_npy(p); }).find("truncated"), std::string::npos);
  fs::remove_all(d);
}

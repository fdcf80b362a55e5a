// safetensors and .npy readers/writers.
#include "vimo/core/tensor_io.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::core {
namespace {
struct DType {
  const char* st;   // safetensors
  const char* npy;  // numpy descr without byte order, nullptr when npy lacks it
  torch::ScalarType t;
};
const DType kDTypes[] = {
    {"F64", "f8", torch::kFloat64}, {"F32", "f4", torch::kFloat32}, {"F16", "f2", torch::kFloat16},
    {"BF16", nullptr, torch::kBFloat16}, {"I64", "i8", torch::kInt64}, {"I32", "i4", torch::kInt32},
    {"I16", "i2", torch::kInt16}, {"I8", "i1", torch::kInt8}, {"U8", "u1", torch::kUInt8},
    {"BOOL", "b1", torch::kBool},
};

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }
}  // namespace

torch::ScalarType safetensors_dtype(const std::string& name, const std::string& context) {
  for (const auto& d : kDTypes)
    if (name == d.st) return d.t;
  throw Error(context + ": dtype '" + name + "' is not supported (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
}

std::string safetensors_dtype_name(torch::ScalarType t) {
  for (const auto& d : kDTypes)
    if (t == d.t) return d.st;
  throw Error(std::string("tensor dtype ") + c10::toString(t) + " cannot be stored in safetensors by vimo");
}

SafeTensors SafeTensors::open(const std::string& path) {
  SafeTensors s;
  s.path_ = path;
  if (!fs::exists(path)) throw Error("tensor file '" + path + "' does not exist");
  if (path.size() > 11 && path.substr(path.size() - 11) == ".index.json") {
    json idx;
    try {
      idx = json::parse(read_file(path));
    } catch (const json::exception& e) {
      throw Error("sharded index '" + path + "' is not valid JSON: " + e.what());
    }
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw Error("sharded index '" + path + "' has no \"weight_map\" object");
    std::map<std::string, std::vector<std::string>> per_file;
    for (auto& [name, file] : idx["weight_map"].items()) per_file[file.get<std::string>()].push_back(name);
    const fs::path dir = fs::path(path).parent_path();
    for (auto& [file, names] : per_file) s.add_file((dir / file).string(), &names);
    if (idx.contains("metadata") && idx["metadata"].is_object())
      for (auto& [k, v] : idx["metadata"].items()) s.metadata_[k] = v.is_string() ? v.get<std::string>() : v.dump();
  } else {
    s.add_file(path, nullptr);
  }
  return s;
}

void SafeTensors::add_file(const std::string& file, const std::vector<std::string>* expected) {
  auto m = MappedFile::open(file);
  const std::string fix = " (the file is truncated or not safetensors; re-save or re-download it)";
  if (m->size() < 8) throw Error("safetensors file '" + file + "' is only " + std::to_string(m->size()) + " bytes" + fix);
  uint64_t n = 0;
  std::memcpy(&n, m->data(), 8);
  if (n > m->size() - 8)
    throw Error("safetensors file '" + file + "' declares a " + std::to_string(n) + "-byte header but has " +
                std::to_string(m->size()) + " bytes" + fix);
  json h;
  try {
    h = json::parse(m->data() + 8, m->data() + 8 + n);
  } catch (const json::exception& e) {
    throw Error("safetensors file '" + file + "' has a corrupt JSON header: " + e.what() + fix);
  }
  const size_t start = 8 + n, data_size = m->size() - start;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      for (auto& [k, mv] : v.items()) metadata_[k] = mv.is_string() ? mv.get<std::string>() : mv.dump();
      continue;
    }
    const std::string ctx = "safetensors file '" + file + "', tensor '" + name + "'";
    TensorInfo ti;
    try {
      ti.dtype = v.at("dtype").get<std::string>();
      ti.shape = v.at("shape").get<std::vector<int64_t>>();
      auto off = v.at("data_offsets").get<std::vector<size_t>>();
      if (off.size() != 2) throw Error(ctx + ": data_offsets must have two entries");
      ti.begin = off[0];
      ti.end = off[1];
    } catch (const json::exception& e) {
      throw Error(ctx + ": malformed entry: " + e.what());
    }
    ti.file = file;
    const auto st = safetensors_dtype(ti.dtype, ctx);
    int64_t numel = 1;
    for (auto d : ti.shape) numel *= d;
    if (ti.end < ti.begin || ti.end - ti.begin != static_cast<size_t>(numel) * c10::elementSize(st))
      throw Error(ctx + ": byte range does not match its shape and dtype" + fix);
    if (ti.end > data_size)
      throw Error(ctx + ": data ends at byte " + std::to_string(ti.end) + " but the file's data section has " +
                  std::to_string(data_size) + " bytes" + fix);
    infos_[name] = ti;
  }
  if (expected)
    for (const auto& e : *expected)
      if (!infos_.count(e)) throw Error("shard '" + file + "' lacks tensor '" + e + "' listed in the index");
  maps_[file] = m;
  data_start_[file] = start;
}

std::vector<std::string> SafeTensors::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : infos_) out.push_back(k);
  return out;
}

const TensorInfo& SafeTensors::info(const std::string& name) const {
  auto it = infos_.find(name);
  if (it == infos_.end()) throw Error("tensor '" + name + "' is not in '" + path_ + "'");
  return it->second;
}

torch::Tensor SafeTensors::get(const std::string& name) const {
  const TensorInfo& ti = info(name);
  auto m = maps_.at(ti.file);
  const auto st = safetensors_dtype(ti.dtype, name);
  const unsigned char* p = m->data() + data_start_.at(ti.file) + ti.begin;
  const auto opts = torch::TensorOptions().dtype(st);
  if (reinterpret_cast<uintptr_t>(p) % c10::elementSize(st) != 0) {
    auto t = torch::empty(ti.shape, opts);
    std::memcpy(t.data_ptr(), p, ti.end - ti.begin);
    return t;
  }
  // The map is MAP_PRIVATE + writable, so in-place changes stay in memory (copy-on-write).
  return torch::from_blob(const_cast<unsigned char*>(p), ti.shape, [m](void*) {}, opts);
}

NamedTensors load_safetensors(const std::string& path) {
  auto s = SafeTensors::open(path);
  NamedTensors out;
  for (const auto& n : s.names()) out.emplace_back(n, s.get(n).clone());
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  size_t off = 0;
  for (const auto& [name, t0] : tensors) {
    if (h.contains(name)) throw Error("save_safetensors('" + path + "'): tensor name '" + name + "' appears twice");
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const size_t bytes = t.numel() * t.element_size();
    h[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())}, {"shape", shape_of(t)}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    data.push_back(t);
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  write_atomic(path, [&](const std::string& tmp) {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& t : data) f.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    f.close();
    if (!f) throw Error("writing '" + path + "' failed (disk full?)");
  });
}

// ---- npy ----
torch::Tensor load_npy(const std::string& path) {
  auto m = MappedFile::open(path);
  const auto* d = m->data();
  const std::string fix = "; save it with numpy.save as a C-order numeric array";
  if (m->size() < 10 || std::memcmp(d, "\x93NUMPY", 6) != 0) throw Error("'" + path + "' is not a .npy file (bad magic)");
  const int major = d[6];
  size_t hlen, hstart;
  if (major == 1) { hlen = d[8] | (d[9] << 8); hstart = 10; }
  else if (major == 2 || major == 3) {
    if (m->size() < 12) throw Error("'" + path + "' is truncated");
    hlen = d[8] | (d[9] << 8) | (d[10] << 16) | (static_cast<size_t>(d[11]) << 24);
    hstart = 12;
  } else throw Error("'" + path + "': unsupported .npy version " + std::to_string(major));
  if (hstart + hlen > m->size()) throw Error("'" + path + "' is truncated inside its header");
  const std::string header(reinterpret_cast<const char*>(d + hstart), hlen);
  std::smatch mt;
  if (!std::regex_search(header, mt, std::regex("'descr':\\s*'([^']*)'"))) throw Error("'" + path + "': header has no descr" + fix);
  const std::string descr = mt[1];
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True")))
    throw Error("'" + path + "' is in Fortran order; vimo reads C order only (numpy.ascontiguousarray before saving)");
  if (!std::regex_search(header, mt, std::regex("'shape':\\s*\\(([^)]*)\\)"))) throw Error("'" + path + "': header has no shape" + fix);
  std::vector<int64_t> shape;
  std::stringstream ss(mt[1].str());
  for (std::string tok; std::getline(ss, tok, ',');) {
    tok.erase(0, tok.find_first_not_of(" \t"));
    if (!tok.empty()) shape.push_back(std::stoll(tok));
  }
  if (descr.size() < 2) throw Error("'" + path + "': bad descr '" + descr + "'");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  if (order == '>' && code != "i1" && code != "u1" && code != "b1")
    throw Error("'" + path + "' is big-endian ('" + descr + "'); convert with arr.astype(arr.dtype.newbyteorder('<'))");
  if (code == "O") throw Error("'" + path + "' holds Python objects (dtype object), which vimo cannot read" + fix);
  const DType* found = nullptr;
  for (const auto& dt : kDTypes)
    if (dt.npy && code == dt.npy) found = &dt;
  if (!found) throw Error("'" + path + "' has dtype '" + descr + "', which vimo does not read (use float32/float64/float16, int8..int64, uint8 or bool)");
  auto t = torch::empty(shape, torch::TensorOptions().dtype(found->t));
  const size_t bytes = t.numel() * t.element_size();
  if (hstart + hlen + bytes > m->size())
    throw Error("'" + path + "' is truncated: expected " + std::to_string(bytes) + " data bytes");
  if (bytes) std::memcpy(t.data_ptr(), d + hstart + hlen, bytes);
  return t;
}

void save_npy(const std::string& path, const torch::Tensor& t0) {
  auto t = t0.detach().to(torch::kCPU).contiguous();
  const DType* found = nullptr;
  for (const auto& dt : kDTypes)
    if (dt.npy && dt.t == t.scalar_type()) found = &dt;
  if (!found) throw Error(std::string("cannot save dtype ") + c10::toString(t.scalar_type()) + " as .npy ('" + path + "')");
  const char order = (std::string(found->npy) == "i1" || std::string(found->npy) == "u1" || std::string(found->npy) == "b1") ? '|' : '<';
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? ", " : "") + std::to_string(t.size(i));
  if (t.dim() == 1) shape += ",";
  shape += ")";
  std::string header = std::string("{'descr': '") + order + found->npy + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  write_file_atomic(path, out);
}

static bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

void convert_tensor_file(const ConvertOptions& o) {
  const bool in_npy = ends_with(o.input, ".npy"), out_npy = ends_with(o.output, ".npy");
  if (!out_npy && !ends_with(o.output, ".safetensors"))
    throw Error("output '" + o.output + "' must end in .npy or .safetensors");
  if (in_npy) {
    auto t = load_npy(o.input);
    if (out_npy) save_npy(o.output, t);
    else save_safetensors(o.output, {{o.name.empty() ? "tensor" : o.name, t}});
    return;
  }
  auto st = SafeTensors::open(o.input);
  if (out_npy) {
    std::string name = o.name;
    if (name.empty()) {
      if (st.names().size() != 1)
        throw Error("'" + o.input + "' holds " + std::to_string(st.names().size()) + " tensors; choose one with --name");
      name = st.names()[0];
    }
    save_npy(o.output, st.get(name));
    return;
  }
  NamedTensors all;
  for (const auto& n : st.names()) all.emplace_back(n, st.get(n));
  save_safetensors(o.output, all, st.metadata());
}

}  // namespace vimo::core

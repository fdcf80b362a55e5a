// HDF5 reading and writing of packed splits (libhdf5 C API; errors name the file and dataset).
#include "vimo/data/packed.h"

#include <hdf5.h>

#include <cstring>
#include <mutex>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"

namespace vimo::data {
namespace {

using motion::kFeatureDim;

// HDF5's own error printing is replaced by our messages.
void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// Owns an HDF5 id and closes it with the matching function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

[[noreturn]] void fail(const std::string& file, const std::string& dset, const std::string& what) {
  throw Error("packed dataset '" + file + "'" + (dset.empty() ? "" : ", dataset '" + dset + "'") + ": " + what);
}

hid_t vlen_str_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_array(hid_t parent, const std::string& file, const std::string& name, hid_t file_type, hid_t mem_type,
                 const std::vector<hsize_t>& dims, const void* data) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle d(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!d.ok()) fail(file, name, "cannot create the dataset");
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  if (n > 0 && H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail(file, name, "write failed (disk full?)");
}

void write_strings(hid_t parent, const std::string& file, const std::string& name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  Handle t(vlen_str_type(), H5Tclose);
  write_array(parent, file, name, t.get(), t.get(), {v.size()}, ptrs.data());
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle t(vlen_str_type(), H5Tclose);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  H5Awrite(a.get(), t.get(), &p);
}

void write_int_attr(hid_t obj, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5Awrite(a.get(), H5T_NATIVE_INT64, &value);
}

std::vector<hsize_t> dims_of(hid_t d) {
  Handle space(H5Dget_space(d), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

Handle open_dataset(hid_t f, const std::string& file, const std::string& name) {
  if (H5Lexists(f, name.c_str(), H5P_DEFAULT) <= 0)
    fail(file, name, "missing; the file is not a vimo packed dataset (write it with `vimo data prepare`)");
  Handle d(H5Dopen2(f, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) fail(file, name, "cannot open");
  return d;
}

// Reads a 1-D variable- or fixed-length string dataset (h5py writes either).
std::vector<std::string> read_strings(hid_t f, const std::string& file, const std::string& name) {
  Handle d = open_dataset(f, file, name);
  Handle ft(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(ft.get()) != H5T_STRING) fail(file, name, "expected strings");
  const auto dims = dims_of(d.get());
  if (dims.size() != 1) fail(file, name, "expected a 1-D array of strings");
  const size_t n = dims[0];
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (H5Tis_variable_str(ft.get()) > 0) {
    Handle mt(vlen_str_type(), H5Tclose);
    std::vector<char*> ptrs(n, nullptr);
    if (H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) fail(file, name, "read failed");
    for (size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    Handle space(H5Dget_space(d.get()), H5Sclose);
    H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const size_t w = H5Tget_size(ft.get());
    Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mt.get(), w);
    std::vector<char> buf(n * w);
    if (H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) fail(file, name, "read failed");
    for (size_t i = 0; i < n; ++i) out[i] = std::string(buf.data() + i * w, strnlen(buf.data() + i * w, w));
  }
  return out;
}

template <class T>
std::vector<T> read_ints(hid_t f, const std::string& file, const std::string& name, hid_t mem_type, size_t expect) {
  Handle d = open_dataset(f, file, name);
  const auto dims = dims_of(d.get());
  if (dims.size() != 1 || dims[0] != expect)
    fail(file, name, "expected " + std::to_string(expect) + " entries (one per clip in index/id)");
  std::vector<T> out(expect);
  if (expect && H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail(file, name, "read failed");
  return out;
}

herr_t collect_attr(hid_t obj, const char* name, const H5A_info_t*, void* op) {
  auto& out = *static_cast<std::map<std::string, std::string>*>(op);
  Handle a(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  Handle t(H5Aget_type(a.get()), H5Tclose);
  const auto cls = H5Tget_class(t.get());
  if (cls == H5T_STRING) {
    if (H5Tis_variable_str(t.get()) > 0) {
      Handle mt(vlen_str_type(), H5Tclose);
      char* p = nullptr;
      if (H5Aread(a.get(), mt.get(), &p) >= 0 && p) {
        out[name] = p;
        H5free_memory(p);
      }
    } else {
      std::vector<char> buf(H5Tget_size(t.get()) + 1, 0);
      Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
      H5Tset_size(mt.get(), buf.size() - 1);
      if (H5Aread(a.get(), mt.get(), buf.data()) >= 0) out[name] = std::string(buf.data());
    }
  } else if (cls == H5T_INTEGER) {
    int64_t v = 0;
    if (H5Aread(a.get(), H5T_NATIVE_INT64, &v) >= 0) out[name] = std::to_string(v);
  } else if (cls == H5T_FLOAT) {
    double v = 0;
    if (H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v) >= 0) out[name] = std::to_string(v);
  }
  return 0;
}

}  // namespace

void write_packed(const std::string& path, const std::vector<motion::Clip>& clips,
                  const std::map<std::string, std::string>& attrs) {
  quiet();
  int P = 1;
  int64_t frames = 0;
  for (const auto& c : clips) {
    VIMO_CHECK(c.motion.defined() && c.motion.dim() == 3 && c.motion.size(2) == kFeatureDim,
               ::vimo::log::cat("clip '", c.id, "': motion must be [T, P, 262], got ",
                                (c.motion.defined() ? c.motion.sizes() : c10::IntArrayRef{})));
    VIMO_CHECK(c.motion.size(1) >= 1 && c.motion.size(1) <= 2,
               ::vimo::log::cat("clip '", c.id, "': 1 or 2 persons expected"));
    P = std::max<int>(P, static_cast<int>(c.motion.size(1)));
    frames += c.motion.size(0);
  }
  // Frames are gathered into one buffer so the file is written with one call.
  auto all = torch::zeros({frames, P, kFeatureDim}, torch::kFloat32);
  ClipIndex idx;
  int64_t at = 0;
  for (const auto& c : clips) {
    const int64_t T = c.motion.size(0), p = c.motion.size(1);
    all.narrow(0, at, T).narrow(1, 0, p).copy_(c.motion.to(torch::kFloat32));
    idx.ids.push_back(c.id);
    idx.offsets.push_back(at);
    idx.lengths.push_back(T);
    idx.persons.push_back(static_cast<int32_t>(p));
    std::string caps;
    for (size_t i = 0; i < c.captions.size(); ++i) caps += (i ? "\n" : "") + c.captions[i];
    idx.captions.push_back({caps});  // joined by newlines: one string per clip in the file
    at += T;
  }
  core::write_atomic(path, [&](const std::string& tmp) {
    Handle f(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!f.ok()) fail(tmp, "", "cannot create the file (is the directory writable?)");
    write_array(f.get(), path, "motion", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                {static_cast<hsize_t>(frames), static_cast<hsize_t>(P), static_cast<hsize_t>(kFeatureDim)},
                all.data_ptr<float>());
    Handle g(H5Gcreate2(f.get(), "index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    const hsize_t n = idx.ids.size();
    write_strings(g.get(), path, "id", idx.ids);
    write_array(g.get(), path, "offset", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, idx.offsets.data());
    write_array(g.get(), path, "length", H5T_STD_I64LE, H5T_NATIVE_INT64, {n}, idx.lengths.data());
    write_array(g.get(), path, "persons", H5T_STD_I32LE, H5T_NATIVE_INT32, {n}, idx.persons.data());
    std::vector<std::string> caps;
    for (const auto& c : idx.captions) caps.push_back(c[0]);
    write_strings(g.get(), path, "captions", caps);
    write_int_attr(f.get(), "format_version", kPackedFormatVersion);
    write_int_attr(f.get(), "feature_dim", kFeatureDim);
    write_int_attr(f.get(), "fps", static_cast<int64_t>(motion::kFps));
    for (const auto& [k, v] : attrs) write_string_attr(f.get(), k, v);
    if (H5Fflush(f.get(), H5F_SCOPE_GLOBAL) < 0) fail(path, "", "flush failed (disk full?)");
  });
}

struct PackedDataset::Impl {
  std::string path;
  ClipIndex index;
  int64_t frames = 0;
  int persons = 0;
  std::map<std::string, std::string> attrs;
  torch::Tensor all;                     // [N_frames, P, 262] in kMemory mode
  std::unique_ptr<Handle> file, motion;  // kept open in kSlices mode
  std::mutex mu;                         // one HDF5 read at a time per file
};

PackedDataset PackedDataset::open(const std::string& path, Mode mode) {
  quiet();
  if (!std::filesystem::exists(path))
    throw Error("packed dataset '" + path +
                "' does not exist; write it with `vimo data prepare --config configs/data/<name>.yaml`");
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  auto f = std::make_unique<Handle>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f->ok()) fail(path, "", "not a readable HDF5 file (truncated or another format?)");
  H5Aiterate2(f->get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr, &impl->attrs);
  auto fv = impl->attrs.find("format_version");
  if (fv != impl->attrs.end() && std::stoll(fv->second) > kPackedFormatVersion)
    fail(path, "",
         "format_version " + fv->second + " is newer than this vimo reads (" + std::to_string(kPackedFormatVersion) +
             "); update vimo or re-run `vimo data prepare`");
  auto m = std::make_unique<Handle>(open_dataset(f->get(), path, "motion"));
  const auto dims = dims_of(m->get());
  if (dims.size() != 3 || dims[2] != static_cast<hsize_t>(kFeatureDim) || dims[1] < 1 || dims[1] > 2)
    fail(path, "motion", "expected shape [N_frames, P (1 or 2), 262]");
  {
    Handle t(H5Dget_type(m->get()), H5Tclose);
    if (H5Tget_class(t.get()) != H5T_FLOAT) fail(path, "motion", "expected a float array");
  }
  impl->frames = static_cast<int64_t>(dims[0]);
  impl->persons = static_cast<int>(dims[1]);
  auto& ix = impl->index;
  ix.ids = read_strings(f->get(), path, "index/id");
  const size_t n = ix.ids.size();
  ix.offsets = read_ints<int64_t>(f->get(), path, "index/offset", H5T_NATIVE_INT64, n);
  ix.lengths = read_ints<int64_t>(f->get(), path, "index/length", H5T_NATIVE_INT64, n);
  if (H5Lexists(f->get(), "index/persons", H5P_DEFAULT) > 0)
    ix.persons = read_ints<int32_t>(f->get(), path, "index/persons", H5T_NATIVE_INT32, n);
  else
    ix.persons.assign(n, impl->persons);
  ix.captions.assign(n, {});
  if (H5Lexists(f->get(), "index/captions", H5P_DEFAULT) > 0) {
    const auto caps = read_strings(f->get(), path, "index/captions");
    if (caps.size() != n) fail(path, "index/captions", "expected one entry per clip in index/id");
    for (size_t i = 0; i < n; ++i) {
      std::stringstream s(caps[i]);
      for (std::string line; std::getline(s, line);)
        if (!line.empty()) ix.captions[i].push_back(line);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (ix.lengths[i] <= 0 || ix.offsets[i] < 0 || ix.offsets[i] + ix.lengths[i] > impl->frames)
      fail(path, "index",
           "clip '" + ix.ids[i] + "' has offset " + std::to_string(ix.offsets[i]) + " and length " +
               std::to_string(ix.lengths[i]) + " outside the " + std::to_string(impl->frames) + " frames of /motion");
    if (ix.persons[i] < 1 || ix.persons[i] > impl->persons)
      fail(path, "index/persons", "clip '" + ix.ids[i] + "' has " + std::to_string(ix.persons[i]) + " persons");
  }
  if (mode == Mode::kMemory) {
    impl->all = torch::empty({impl->frames, impl->persons, kFeatureDim}, torch::kFloat32);
    if (impl->frames > 0 &&
        H5Dread(m->get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, impl->all.data_ptr<float>()) < 0)
      fail(path, "motion", "read failed (truncated file?)");
  } else {
    impl->file = std::move(f);
    impl->motion = std::move(m);
  }
  PackedDataset ds;
  ds.impl_ = impl;
  return ds;
}

const std::string& PackedDataset::path() const { return impl_->path; }
const ClipIndex& PackedDataset::index() const { return impl_->index; }
int64_t PackedDataset::size() const { return impl_->index.size(); }
int64_t PackedDataset::total_frames() const { return impl_->frames; }
int PackedDataset::persons() const { return impl_->persons; }
bool PackedDataset::in_memory() const { return impl_->all.defined(); }
const std::map<std::string, std::string>& PackedDataset::attrs() const { return impl_->attrs; }

const torch::Tensor& PackedDataset::all() const {
  VIMO_CHECK(in_memory(), ::vimo::log::cat("packed dataset '", impl_->path,
                                           "' was opened for slice reads; open it with Mode::kMemory"));
  return impl_->all;
}

std::string PackedDataset::attr(const std::string& name, const std::string& fallback) const {
  auto it = impl_->attrs.find(name);
  return it == impl_->attrs.end() ? fallback : it->second;
}

torch::Tensor PackedDataset::frames(int64_t i, int64_t start, int64_t len) const {
  const auto& ix = impl_->index;
  VIMO_CHECK(i >= 0 && i < ix.size(),
             ::vimo::log::cat("packed dataset '", impl_->path, "': clip ", i, " out of range (", ix.size(), " clips)"));
  if (len < 0) len = ix.lengths[i] - start;
  VIMO_CHECK(start >= 0 && len >= 0 && start + len <= ix.lengths[i],
             ::vimo::log::cat("packed dataset '", impl_->path, "': frames [", start, ", ", start + len,
                              ") outside clip '", ix.ids[i], "' of ", ix.lengths[i], " frames"));
  const int64_t row = ix.offsets[i] + start;
  if (in_memory()) return impl_->all.narrow(0, row, len);
  auto out = torch::empty({len, impl_->persons, kFeatureDim}, torch::kFloat32);
  if (len == 0) return out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  Handle fspace(H5Dget_space(impl_->motion->get()), H5Sclose);
  const hsize_t off[3] = {static_cast<hsize_t>(row), 0, 0};
  const hsize_t cnt[3] = {static_cast<hsize_t>(len), static_cast<hsize_t>(impl_->persons),
                          static_cast<hsize_t>(kFeatureDim)};
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off, nullptr, cnt, nullptr);
  Handle mspace(H5Screate_simple(3, cnt, nullptr), H5Sclose);
  if (H5Dread(impl_->motion->get(), H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, out.data_ptr<float>()) <
      0)
    fail(impl_->path, "motion", "reading rows " + std::to_string(row) + ".." + std::to_string(row + len) + " failed");
  return out;
}

motion::Clip PackedDataset::clip(int64_t i) const {
  motion::Clip c;
  c.motion = frames(i).narrow(1, 0, impl_->index.persons.at(i));
  c.id = impl_->index.ids[i];
  c.captions = impl_->index.captions[i];
  return c;
}

}  // namespace vimo::data

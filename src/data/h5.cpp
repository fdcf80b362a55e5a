// The HDF5 wrapper of data/h5.h: libhdf5's own error printing is off; our messages name the file.
#include "vimo/data/h5.h"

#include <cstring>
#include <filesystem>

#include "vimo/core/error.h"

namespace vimo::data::h5 {
namespace {

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

hid_t vlen_str_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// (file type, memory type) of a tensor dtype.
std::pair<hid_t, hid_t> types_of(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return {H5T_IEEE_F32LE, H5T_NATIVE_FLOAT};
    case torch::kDouble: return {H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE};
    case torch::kLong: return {H5T_STD_I64LE, H5T_NATIVE_INT64};
    case torch::kInt: return {H5T_STD_I32LE, H5T_NATIVE_INT32};
    case torch::kShort: return {H5T_STD_I16LE, H5T_NATIVE_INT16};
    case torch::kByte: return {H5T_STD_U8LE, H5T_NATIVE_UINT8};
    default: throw Error(std::string("HDF5 wrapper: no type for ") + c10::toString(t));
  }
}

std::vector<int64_t> dims_of(hid_t d) {
  Handle space(H5Dget_space(d), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

void write_array(const File& f, hid_t parent, const std::string& name, hid_t file_type, hid_t mem_type,
                 const std::vector<hsize_t>& dims, const void* data) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle d(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  if (!d.ok()) f.fail(name, "cannot create the dataset");
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  if (n > 0 && H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    f.fail(name, "write failed (disk full?)");
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

template <class T>
std::vector<T> read_ints(const File& f, const std::string& name, int64_t expect) {
  const auto dims = f.dims(name);
  if (dims.size() != 1 || dims[0] != expect)
    f.fail(name, "expected " + std::to_string(expect) + " entries, found shape " + c10::str(c10::IntArrayRef(dims)));
  if (!f.is_integer(name)) f.fail(name, "expected integers");
  std::vector<T> out(static_cast<size_t>(expect));
  if (expect) {
    auto t = f.read(name, sizeof(T) == 8 ? torch::kLong : torch::kInt);
    std::memcpy(out.data(), t.data_ptr(), out.size() * sizeof(T));
  }
  return out;
}

}  // namespace

Dataset::Dataset(std::shared_ptr<Handle> file, Handle d, std::string path, std::string name, std::vector<int64_t> dims)
    : file_(std::move(file)),
      d_(std::make_shared<Handle>(std::move(d))),
      path_(std::move(path)),
      name_(std::move(name)),
      dims_(std::move(dims)) {}

void Dataset::read_rows(int64_t row, int64_t count, torch::Tensor& out) const {
  if (count == 0) return;
  std::vector<hsize_t> off(dims_.size(), 0), cnt(dims_.begin(), dims_.end());
  off[0] = static_cast<hsize_t>(row);
  cnt[0] = static_cast<hsize_t>(count);
  Handle fspace(H5Dget_space(d_->get()), H5Sclose);
  H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr);
  Handle mspace(H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr), H5Sclose);
  if (H5Dread(d_->get(), types_of(out.scalar_type()).second, mspace.get(), fspace.get(), H5P_DEFAULT,
              out.data_ptr()) < 0)
    throw Error("'" + path_ + "', dataset '" + name_ + "': reading rows " + std::to_string(row) + ".." +
                std::to_string(row + count) + " failed");
}

File File::create(const std::string& path, const Kind& kind, const std::string& shown) {
  quiet();
  auto f = std::make_shared<Handle>(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  File file(f, shown.empty() ? path : shown, kind);
  if (!f->ok()) file.fail("", "cannot create '" + path + "' (is the directory writable?)");
  return file;
}

File File::open(const std::string& path, const Kind& kind) {
  quiet();
  if (!std::filesystem::exists(path)) throw Error(kind.name + " '" + path + "' does not exist; " + kind.how_to_make);
  auto f = std::make_shared<Handle>(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  File file(f, path, kind);
  if (!f->ok()) file.fail("", "not a readable HDF5 file (truncated or another format?); " + kind.how_to_make);
  return file;
}

void File::fail(const std::string& dataset, const std::string& what) const {
  throw Error(kind_.name + " '" + shown_ + "'" + (dataset.empty() ? "" : ", dataset '" + dataset + "'") + ": " + what);
}

bool File::has(const std::string& name) const {
  // H5Lexists on "a/b" needs "a" to exist.
  const auto slash = name.rfind('/');
  if (slash != std::string::npos && slash > 0 && !has(name.substr(0, slash))) return false;
  return H5Lexists(f_->get(), name.c_str(), H5P_DEFAULT) > 0;
}

void File::create_group(const std::string& name) {
  Handle g(H5Gcreate2(f_->get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) fail(name, "cannot create the group");
}

void File::write(const std::string& name, const torch::Tensor& t_in) {
  auto t = t_in.contiguous().cpu();
  const auto [ft, mt] = types_of(t.scalar_type());
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  write_array(*this, f_->get(), name, ft, mt, dims, t.data_ptr());
}

void File::write(const std::string& name, const std::vector<int64_t>& v) {
  write_array(*this, f_->get(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, {v.size()}, v.data());
}

void File::write(const std::string& name, const std::vector<int32_t>& v) {
  write_array(*this, f_->get(), name, H5T_STD_I32LE, H5T_NATIVE_INT32, {v.size()}, v.data());
}

void File::write_strings(const std::string& name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  Handle t(vlen_str_type(), H5Tclose);
  write_array(*this, f_->get(), name, t.get(), t.get(), {v.size()}, ptrs.data());
}

void File::set_attr(const std::string& name, int64_t v) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(f_->get(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!a.ok() || H5Awrite(a.get(), H5T_NATIVE_INT64, &v) < 0) fail("", "cannot write the attribute '" + name + "'");
}

void File::set_attr(const std::string& name, const std::string& v) {
  Handle t(vlen_str_type(), H5Tclose);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(f_->get(), name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = v.c_str();
  if (!a.ok() || H5Awrite(a.get(), t.get(), &p) < 0) fail("", "cannot write the attribute '" + name + "'");
}

void File::flush() {
  if (H5Fflush(f_->get(), H5F_SCOPE_GLOBAL) < 0) fail("", "flush failed (disk full?)");
}

Handle File::open_dataset(const std::string& name) const {
  if (!has(name)) fail(name, "missing; the file is not a vimo " + kind_.name + " (" + kind_.how_to_make + ")");
  Handle d(H5Dopen2(f_->get(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) fail(name, "cannot open");
  return d;
}

std::vector<int64_t> File::dims(const std::string& name) const { return dims_of(open_dataset(name).get()); }

bool File::is_float(const std::string& name) const {
  Handle d = open_dataset(name);
  Handle t(H5Dget_type(d.get()), H5Tclose);
  return H5Tget_class(t.get()) == H5T_FLOAT;
}

bool File::is_integer(const std::string& name) const {
  Handle d = open_dataset(name);
  Handle t(H5Dget_type(d.get()), H5Tclose);
  return H5Tget_class(t.get()) == H5T_INTEGER;
}

torch::Tensor File::read(const std::string& name, torch::ScalarType as) const {
  Handle d = open_dataset(name);
  const auto dims = dims_of(d.get());
  auto out = torch::empty(dims, as);
  if (out.numel() > 0 && H5Dread(d.get(), types_of(as).second, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0)
    fail(name, "read failed (truncated file, or not a numeric array?)");
  return out;
}

std::vector<int64_t> File::read_i64(const std::string& name, int64_t expect) const {
  return read_ints<int64_t>(*this, name, expect);
}

std::vector<int32_t> File::read_i32(const std::string& name, int64_t expect) const {
  return read_ints<int32_t>(*this, name, expect);
}

std::vector<std::string> File::read_strings(const std::string& name) const {
  Handle d = open_dataset(name);
  Handle ft(H5Dget_type(d.get()), H5Tclose);
  if (H5Tget_class(ft.get()) != H5T_STRING) fail(name, "expected strings");
  const auto dims = dims_of(d.get());
  if (dims.size() != 1) fail(name, "expected a 1-D array of strings");
  const size_t n = static_cast<size_t>(dims[0]);
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (H5Tis_variable_str(ft.get()) > 0) {
    Handle mt(vlen_str_type(), H5Tclose);
    std::vector<char*> ptrs(n, nullptr);
    if (H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) fail(name, "read failed");
    for (size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    Handle space(H5Dget_space(d.get()), H5Sclose);
    H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, ptrs.data());
  } else {
    const size_t w = H5Tget_size(ft.get());
    Handle mt(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mt.get(), w);
    std::vector<char> buf(n * w);
    if (H5Dread(d.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) fail(name, "read failed");
    for (size_t i = 0; i < n; ++i) out[i] = std::string(buf.data() + i * w, strnlen(buf.data() + i * w, w));
  }
  return out;
}

std::map<std::string, std::string> File::attrs() const {
  std::map<std::string, std::string> out;
  H5Aiterate2(f_->get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attr, &out);
  return out;
}

Dataset File::dataset(const std::string& name) const {
  Handle d = open_dataset(name);
  auto dims = dims_of(d.get());
  return Dataset(f_, std::move(d), shown_, name, std::move(dims));
}

}  // namespace vimo::data::h5

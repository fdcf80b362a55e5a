// The one HDF5 wrapper (libhdf5 C API) behind packed splits and token caches: RAII handles, whole
// arrays and string arrays, row slices, root attributes; every error names the file and dataset.
#pragma once
#include <hdf5.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vimo::data::h5 {

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

// What a file is for, in messages: "packed dataset" + "write it with `vimo data prepare ...`".
struct Kind {
  std::string name, how_to_make;
};

// One open dataset, kept open for repeated row reads (slice-mode packed splits).
class Dataset {
 public:
  const std::vector<int64_t>& dims() const { return dims_; }
  // Rows [row, row + count) of the first dimension into `out` (contiguous, [count, dims[1:]...]),
  // converted to out's dtype. Not thread-safe: callers serialize reads of one file.
  void read_rows(int64_t row, int64_t count, torch::Tensor& out) const;

 private:
  friend class File;
  Dataset(std::shared_ptr<Handle> file, Handle d, std::string path, std::string name, std::vector<int64_t> dims);
  std::shared_ptr<Handle> file_;  // keeps the file open
  std::shared_ptr<Handle> d_;
  std::string path_, name_;
  std::vector<int64_t> dims_;
};

class File {
 public:
  // Creates (truncates) `path` for writing. `shown` is the name used in messages (the final name
  // when `path` is a temporary one).
  static File create(const std::string& path, const Kind& kind, const std::string& shown = "");
  // Opens read-only; a missing file or one that is not HDF5 is an error naming it and the fix.
  static File open(const std::string& path, const Kind& kind);

  const std::string& path() const { return shown_; }
  [[noreturn]] void fail(const std::string& dataset, const std::string& what) const;

  bool has(const std::string& name) const;
  void create_group(const std::string& name);
  // Whole arrays; the file type follows the dtype (float32, float64, int64, int32, int16, uint8).
  void write(const std::string& name, const torch::Tensor& t);
  void write(const std::string& name, const std::vector<int64_t>& v);
  void write(const std::string& name, const std::vector<int32_t>& v);
  void write_strings(const std::string& name, const std::vector<std::string>& v);  // UTF-8, variable length
  void set_attr(const std::string& name, int64_t v);
  void set_attr(const std::string& name, const std::string& v);
  void flush();

  // Dimensions of a dataset; a missing one is an error saying the file is not of this kind.
  std::vector<int64_t> dims(const std::string& name) const;
  bool is_float(const std::string& name) const;
  bool is_integer(const std::string& name) const;
  // The whole array converted to `as`.
  torch::Tensor read(const std::string& name, torch::ScalarType as) const;
  // A 1-D integer array of exactly `expect` entries.
  std::vector<int64_t> read_i64(const std::string& name, int64_t expect) const;
  std::vector<int32_t> read_i32(const std::string& name, int64_t expect) const;
  // A 1-D array of variable- or fixed-length strings (h5py writes either).
  std::vector<std::string> read_strings(const std::string& name) const;
  // Root attributes as text (integers and floats printed).
  std::map<std::string, std::string> attrs() const;
  Dataset dataset(const std::string& name) const;

 private:
  File(std::shared_ptr<Handle> f, std::string shown, Kind kind)
      : f_(std::move(f)), shown_(std::move(shown)), kind_(std::move(kind)) {}
  Handle open_dataset(const std::string& name) const;
  std::shared_ptr<Handle> f_;
  std::string shown_;
  Kind kind_;
};

}  // namespace vimo::data::h5

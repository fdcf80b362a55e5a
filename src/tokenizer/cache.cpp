// Token cache: every clip of a packed split encoded once, in one HDF5 file for stage 2.
#include <hdf5.h>

#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/progress.h"
#include "vimo/data/packed.h"
#include "vimo/tokenizer/tokenizer.h"

namespace vimo::tokenizer {

namespace {

struct H5 {
  hid_t id;
  herr_t (*close)(hid_t);
  ~H5() {
    if (id >= 0) close(id);
  }
};

void check(herr_t rc, const std::string& what) { VIMO_CHECK(rc >= 0, "HDF5 error writing " + what); }

void write_array(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims, const void* data) {
  H5 space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  H5 set{H5Dcreate2(file, name, type, space.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose};
  VIMO_CHECK(set.id >= 0, std::string("HDF5: cannot create dataset ") + name);
  if (!dims.empty() && dims[0] > 0) check(H5Dwrite(set.id, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name);
}

void write_strings(hid_t file, const char* name, const std::vector<std::string>& v) {
  std::vector<const char*> p;
  for (const auto& s : v) p.push_back(s.c_str());
  H5 type{H5Tcopy(H5T_C_S1), H5Tclose};
  check(H5Tset_size(type.id, H5T_VARIABLE), name);
  check(H5Tset_cset(type.id, H5T_CSET_UTF8), name);
  write_array(file, name, type.id, {static_cast<hsize_t>(v.size())}, p.data());
}

void attr_i64(hid_t file, const char* name, int64_t v) {
  H5 space{H5Screate(H5S_SCALAR), H5Sclose};
  H5 a{H5Acreate2(file, name, H5T_NATIVE_INT64, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  check(H5Awrite(a.id, H5T_NATIVE_INT64, &v), name);
}

void attr_str(hid_t file, const char* name, const std::string& v) {
  H5 type{H5Tcopy(H5T_C_S1), H5Tclose};
  check(H5Tset_size(type.id, std::max<size_t>(1, v.size())), name);
  H5 space{H5Screate(H5S_SCALAR), H5Sclose};
  H5 a{H5Acreate2(file, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  check(H5Awrite(a.id, type.id, v.c_str()), name);
}

}  // namespace

void write_token_cache(MotionTokenizer& tok, const std::string& split_h5, const std::string& out_h5,
                       const std::string& run_dir) {
  VIMO_CHECK(std::filesystem::exists(split_h5), "packed split '" + split_h5 + "' does not exist; make it with "
                                                "`vimo data prepare --config configs/data/<dataset>.yaml`");
  auto ds = data::PackedDataset::open(split_h5, data::PackedDataset::Mode::kSlices);
  const auto& o = tok.options();
  const int64_t P = ds.persons(), Q = o.num_quantizers;
  std::vector<torch::Tensor> codes;
  std::vector<int64_t> offsets, lengths, frames;
  std::vector<int32_t> persons;
  int64_t total = 0;
  core::Progress progress("encode " + split_h5, ds.size());
  for (int64_t i = 0; i < ds.size(); ++i) {
    auto m = ds.frames(i);  // [T, P, F]
    VIMO_CHECK(m.size(-1) == o.feature_dim, "'" + split_h5 + "' has " + std::to_string(m.size(-1)) +
                                                "-d features but the tokenizer expects " +
                                                std::to_string(o.feature_dim));
    auto c = tok.encode(m).to(torch::kInt);  // [T', P, Q]
    offsets.push_back(total);
    lengths.push_back(c.size(0));
    frames.push_back(m.size(0));
    persons.push_back(ds.index().persons[i]);
    total += c.size(0);
    codes.push_back(c);
    progress.add();
  }
  progress.finish();
  auto all = codes.empty() ? torch::zeros({0, P, Q}, torch::kInt) : torch::cat(codes).contiguous();
  core::write_atomic(out_h5, [&](const std::string& tmp) {
    H5 file{H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose};
    VIMO_CHECK(file.id >= 0, "cannot create '" + out_h5 + "'");
    write_array(file.id, "codes", H5T_NATIVE_INT32, {static_cast<hsize_t>(total), static_cast<hsize_t>(P),
                                                     static_cast<hsize_t>(Q)}, all.data_ptr<int32_t>());
    const hsize_t n = static_cast<hsize_t>(ds.size());
    write_array(file.id, "offsets", H5T_NATIVE_INT64, {n}, offsets.data());
    write_array(file.id, "lengths", H5T_NATIVE_INT64, {n}, lengths.data());
    write_array(file.id, "frames", H5T_NATIVE_INT64, {n}, frames.data());
    write_array(file.id, "persons", H5T_NATIVE_INT32, {n}, persons.data());
    write_strings(file.id, "ids", ds.index().ids);
    attr_i64(file.id, "codebook_size", o.codebook_size);
    attr_i64(file.id, "num_quantizers", Q);
    attr_i64(file.id, "downsample", o.downsample());
    attr_i64(file.id, "format_version", 1);
    attr_str(file.id, "tokenizer_run", run_dir);
    attr_str(file.id, "tokenizer_checkpoint", tok.checkpoint());
    attr_str(file.id, "source", split_h5);
  });
}

}  // namespace vimo::tokenizer

// Reading and writing packed splits through the HDF5 wrapper (data/h5.h).
#include "vimo/data/packed.h"

#include <mutex>
#include <optional>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/data/h5.h"

namespace vimo::data {
namespace {

using motion::kFeatureDim;

const h5::Kind kPacked{"packed dataset", "write it with `vimo data prepare --config configs/data/<name>.yaml`"};

}  // namespace

void write_packed(const std::string& path, const std::vector<motion::Clip>& clips,
                  const std::map<std::string, std::string>& attrs) {
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
    auto f = h5::File::create(tmp, kPacked, path);
    f.write("motion", all);
    f.create_group("index");
    f.write_strings("index/id", idx.ids);
    f.write("index/offset", idx.offsets);
    f.write("index/length", idx.lengths);
    f.write("index/persons", idx.persons);
    std::vector<std::string> caps;
    for (const auto& c : idx.captions) caps.push_back(c[0]);
    f.write_strings("index/captions", caps);
    f.set_attr("format_version", kPackedFormatVersion);
    f.set_attr("feature_dim", static_cast<int64_t>(kFeatureDim));
    f.set_attr("fps", static_cast<int64_t>(motion::kFps));
    for (const auto& [k, v] : attrs) f.set_attr(k, v);
    f.flush();
  });
}

struct PackedDataset::Impl {
  std::string path;
  ClipIndex index;
  int64_t frames = 0;
  int persons = 0;
  std::map<std::string, std::string> attrs;
  torch::Tensor all;                 // [N_frames, P, 262] in kMemory mode
  std::optional<h5::Dataset> motion; // kept open in kSlices mode
  std::mutex mu;                     // one HDF5 read at a time per file
};

PackedDataset PackedDataset::open(const std::string& path, Mode mode) {
  auto f = h5::File::open(path, kPacked);
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->attrs = f.attrs();
  auto fv = impl->attrs.find("format_version");
  if (fv != impl->attrs.end() && std::stoll(fv->second) > kPackedFormatVersion)
    f.fail("", "format_version " + fv->second + " is newer than this vimo reads (" +
                   std::to_string(kPackedFormatVersion) + "); update vimo or re-run `vimo data prepare`");
  const auto dims = f.dims("motion");
  if (dims.size() != 3 || dims[2] != kFeatureDim || dims[1] < 1 || dims[1] > 2)
    f.fail("motion", "expected shape [N_frames, P (1 or 2), 262]");
  if (!f.is_float("motion")) f.fail("motion", "expected a float array");
  impl->frames = dims[0];
  impl->persons = static_cast<int>(dims[1]);
  auto& ix = impl->index;
  ix.ids = f.read_strings("index/id");
  const int64_t n = ix.size();
  ix.offsets = f.read_i64("index/offset", n);
  ix.lengths = f.read_i64("index/length", n);
  if (f.has("index/persons"))
    ix.persons = f.read_i32("index/persons", n);
  else
    ix.persons.assign(n, impl->persons);
  ix.captions.assign(n, {});
  if (f.has("index/captions")) {
    const auto caps = f.read_strings("index/captions");
    if (static_cast<int64_t>(caps.size()) != n) f.fail("index/captions", "expected one entry per clip in index/id");
    for (int64_t i = 0; i < n; ++i) {
      std::stringstream s(caps[i]);
      for (std::string line; std::getline(s, line);)
        if (!line.empty()) ix.captions[i].push_back(line);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    if (ix.lengths[i] <= 0 || ix.offsets[i] < 0 || ix.offsets[i] + ix.lengths[i] > impl->frames)
      f.fail("index", "clip '" + ix.ids[i] + "' has offset " + std::to_string(ix.offsets[i]) + " and length " +
                          std::to_string(ix.lengths[i]) + " outside the " + std::to_string(impl->frames) +
                          " frames of /motion");
    if (ix.persons[i] < 1 || ix.persons[i] > impl->persons)
      f.fail("index/persons", "clip '" + ix.ids[i] + "' has " + std::to_string(ix.persons[i]) + " persons");
  }
  if (mode == Mode::kMemory)
    impl->all = f.read("motion", torch::kFloat32);
  else
    impl->motion = f.dataset("motion");
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
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->motion->read_rows(row, len, out);
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

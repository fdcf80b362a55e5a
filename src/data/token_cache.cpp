// Token cache files (data/token_cache.h) through the HDF5 wrapper; the layout is checked on open.
#include "vimo/data/token_cache.h"

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/data/h5.h"

namespace vimo::data {
namespace {

const h5::Kind kCache{"token cache", "write it with `vimo tokenizer encode --run TOKENIZER_RUN --data PACKED --out OUT`"};

int64_t int_attr(const h5::File& f, const std::map<std::string, std::string>& attrs, const std::string& name) {
  auto it = attrs.find(name);
  if (it == attrs.end()) f.fail("", "has no root attribute '" + name + "'; " + kCache.how_to_make);
  try {
    size_t used = 0;
    const int64_t v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  f.fail("", "attribute '" + name + "' is '" + it->second + "', not an integer");
}

std::string str_attr(const std::map<std::string, std::string>& attrs, const std::string& name) {
  auto it = attrs.find(name);
  return it == attrs.end() ? "" : it->second;
}

}  // namespace

void write_token_cache(const std::string& path, const TokenCacheContents& c) {
  const auto& in = c.info;
  VIMO_CHECK(in.codebook_size > 0 && in.num_quantizers > 0 && in.downsample > 0,
             log::cat("token cache '", path, "': codebook_size, num_quantizers and downsample must be positive, got ",
                      in.codebook_size, ", ", in.num_quantizers, ", ", in.downsample));
  const int64_t n = static_cast<int64_t>(c.clips.size());
  const int64_t P = n ? c.clips[0].codes.size(1) : 2, Q = in.num_quantizers;
  std::vector<torch::Tensor> codes;
  std::vector<int64_t> offsets, lengths, frames, caption_offsets{0};
  std::vector<int32_t> persons;
  std::vector<std::string> ids, captions;
  int64_t steps = 0;
  for (const auto& clip : c.clips) {
    const auto& t = clip.codes;
    VIMO_CHECK(t.defined() && t.dim() == 3 && t.size(1) == P && t.size(2) == Q && !t.is_floating_point(),
               log::cat("token cache '", path, "': clip '", clip.id, "' has codes of shape ",
                        (t.defined() ? t.sizes() : c10::IntArrayRef{}), "; expected integer [T', ", P, ", ", Q, "]"));
    VIMO_CHECK(t.numel() == 0 || (t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < in.codebook_size),
               log::cat("token cache '", path, "': clip '", clip.id, "' has codes outside 0..", in.codebook_size - 1));
    VIMO_CHECK(clip.persons >= 1 && clip.persons <= P,
               log::cat("token cache '", path, "': clip '", clip.id, "' has ", clip.persons, " persons (1..", P, ")"));
    codes.push_back(t.to(torch::kInt));
    offsets.push_back(steps);
    lengths.push_back(t.size(0));
    frames.push_back(clip.frames);
    persons.push_back(clip.persons);
    ids.push_back(clip.id);
    captions.insert(captions.end(), clip.captions.begin(), clip.captions.end());
    caption_offsets.push_back(static_cast<int64_t>(captions.size()));
    steps += t.size(0);
  }
  const auto dtype = in.codebook_size <= 32768 ? torch::kShort : torch::kInt;
  auto all = (codes.empty() ? torch::zeros({0, P, Q}, torch::kInt) : torch::cat(codes)).to(dtype);
  core::write_atomic(path, [&](const std::string& tmp) {
    auto f = h5::File::create(tmp, kCache, path);
    f.write("codes", all);
    f.write("offsets", offsets);
    f.write("lengths", lengths);
    f.write("frames", frames);
    f.write("persons", persons);
    f.write_strings("ids", ids);
    f.write_strings("captions", captions);
    f.write("caption_offsets", caption_offsets);
    f.set_attr("format_version", kTokenCacheFormatVersion);
    f.set_attr("codebook_size", in.codebook_size);
    f.set_attr("num_quantizers", in.num_quantizers);
    f.set_attr("downsample", in.downsample);
    f.set_attr("tokenizer_run", in.tokenizer_run);
    f.set_attr("tokenizer_checkpoint", in.tokenizer_checkpoint);
    f.set_attr("source", in.source);
    f.flush();
  });
}

TokenCache TokenCache::open(const std::string& path) {
  auto f = h5::File::open(path, kCache);
  const auto attrs = f.attrs();
  const int64_t version = int_attr(f, attrs, "format_version");
  if (version < kTokenCacheFormatVersion)
    f.fail("", "format_version " + std::to_string(version) +
                   " holds no captions; re-encode it with `vimo tokenizer encode --run TOKENIZER_RUN --data " +
                   (str_attr(attrs, "source").empty() ? std::string("PACKED") : str_attr(attrs, "source")) +
                   " --out " + path + "`");
  if (version > kTokenCacheFormatVersion)
    f.fail("", "format_version " + std::to_string(version) + " is newer than this vimo reads (" +
                   std::to_string(kTokenCacheFormatVersion) + "); update vimo");
  TokenCache c;
  c.path_ = path;
  auto& in = c.info_;
  in.codebook_size = int_attr(f, attrs, "codebook_size");
  in.num_quantizers = int_attr(f, attrs, "num_quantizers");
  in.downsample = int_attr(f, attrs, "downsample");
  in.tokenizer_run = str_attr(attrs, "tokenizer_run");
  in.tokenizer_checkpoint = str_attr(attrs, "tokenizer_checkpoint");
  in.source = str_attr(attrs, "source");
  if (in.codebook_size < 1 || in.num_quantizers < 1 || in.downsample < 1)
    f.fail("", "codebook_size, num_quantizers and downsample must be positive");

  const auto dims = f.dims("codes");
  if (dims.size() != 3 || dims[1] < 1 || dims[1] > 2 || dims[2] != in.num_quantizers || !f.is_integer("codes"))
    f.fail("codes", "expected integers [N_steps, P (1 or 2), Q=" + std::to_string(in.num_quantizers) + "], found " +
                        c10::str(c10::IntArrayRef(dims)));
  c.persons_dim_ = static_cast<int>(dims[1]);
  c.codes_ = f.read("codes", torch::kInt);
  if (c.codes_.numel() > 0 &&
      (c.codes_.min().item<int64_t>() < 0 || c.codes_.max().item<int64_t>() >= in.codebook_size))
    f.fail("codes", "values outside 0.." + std::to_string(in.codebook_size - 1) + " (codebook_size)");

  c.ids_ = f.read_strings("ids");
  const int64_t n = c.size();
  c.offsets_ = f.read_i64("offsets", n);
  c.lengths_ = f.read_i64("lengths", n);
  c.frames_ = f.read_i64("frames", n);
  c.persons_ = f.read_i32("persons", n);
  c.captions_ = f.read_strings("captions");
  c.caption_offsets_ = f.read_i64("caption_offsets", n + 1);
  if (c.caption_offsets_.front() != 0 ||
      c.caption_offsets_.back() != static_cast<int64_t>(c.captions_.size()))
    f.fail("caption_offsets", "must run from 0 to the " + std::to_string(c.captions_.size()) + " entries of /captions");
  for (int64_t i = 0; i < n; ++i) {
    const auto& id = c.ids_[i];
    if (c.lengths_[i] < 0 || c.offsets_[i] < 0 || c.offsets_[i] + c.lengths_[i] > dims[0])
      f.fail("offsets", "clip '" + id + "' has offset " + std::to_string(c.offsets_[i]) + " and length " +
                            std::to_string(c.lengths_[i]) + " outside the " + std::to_string(dims[0]) +
                            " steps of /codes");
    if (c.persons_[i] < 1 || c.persons_[i] > c.persons_dim_)
      f.fail("persons", "clip '" + id + "' has " + std::to_string(c.persons_[i]) + " persons");
    if (c.frames_[i] < 0) f.fail("frames", "clip '" + id + "' has a negative frame count");
    if (c.caption_offsets_[i + 1] < c.caption_offsets_[i])
      f.fail("caption_offsets", "decreases at clip '" + id + "'");
    c.by_id_.emplace(id, i);  // the first clip of an id wins
  }
  return c;
}

void TokenCache::check_index(int64_t i) const {
  VIMO_CHECK(i >= 0 && i < size(), log::cat("token cache '", path_, "': clip ", i, " out of range (", size(), " clips)"));
}

TokenClip TokenCache::clip(int64_t i) const {
  check_index(i);
  TokenClip c;
  c.id = ids_[i];
  c.codes = codes_.narrow(0, offsets_[i], lengths_[i]).to(torch::kLong);
  c.frames = frames_[i];
  c.persons = persons_[i];
  c.captions.assign(captions_.begin() + caption_offsets_[i], captions_.begin() + caption_offsets_[i + 1]);
  return c;
}

const std::string& TokenCache::id(int64_t i) const {
  check_index(i);
  return ids_[i];
}

std::optional<int64_t> TokenCache::find(const std::string& id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

void TokenCache::check_layout(int64_t codebook_size, int64_t num_quantizers, const std::string& who) const {
  if (codebook_size == info_.codebook_size && num_quantizers == info_.num_quantizers) return;
  const std::string made_by = info_.tokenizer_run.empty() ? "" : " by tokenizer run '" + info_.tokenizer_run + "'";
  throw Error("token cache '" + path_ + "' was made" + made_by + " with K=" + std::to_string(info_.codebook_size) +
              " codes and Q=" + std::to_string(info_.num_quantizers) + " quantizers, but " + who + " has K=" +
              std::to_string(codebook_size) + " and Q=" + std::to_string(num_quantizers) +
              ": the cache was made by another tokenizer. Re-encode it with the tokenizer run of " + who +
              ": `vimo tokenizer encode --run TOKENIZER_RUN --data " +
              (info_.source.empty() ? std::string("PACKED") : info_.source) + " --out " + path_ + "`");
}

}  // namespace vimo::data

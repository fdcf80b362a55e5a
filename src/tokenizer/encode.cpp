// The encoding side of the token cache: a packed split (or a packed directory) through a trained
// MotionTokenizer into data::TokenCacheContents, written with data::write_token_cache.
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/progress.h"
#include "vimo/data/packed.h"
#include "vimo/tokenizer/tokenizer.h"

namespace fs = std::filesystem;

namespace vimo::tokenizer {

data::TokenCacheContents encode_split(MotionTokenizer& tok, const std::string& split_h5) {
  auto ds = data::PackedDataset::open(split_h5, data::PackedDataset::Mode::kSlices);
  const auto& o = tok.options();
  data::TokenCacheContents c;
  c.info.codebook_size = o.codebook_size;
  c.info.num_quantizers = o.num_quantizers;
  c.info.downsample = o.downsample();
  c.info.tokenizer_run = tok.run_dir();
  c.info.tokenizer_checkpoint = tok.checkpoint();
  c.info.source = split_h5;
  const auto& ix = ds.index();
  core::Progress progress("encode " + split_h5, ds.size());
  for (int64_t i = 0; i < ds.size(); ++i) {
    auto m = ds.frames(i);  // [T, P, F]
    VIMO_CHECK(m.size(-1) == o.feature_dim, "'" + split_h5 + "' has " + std::to_string(m.size(-1)) +
                                                "-d features but the tokenizer '" + tok.run_dir() + "' expects " +
                                                std::to_string(o.feature_dim));
    data::TokenClip clip;
    clip.id = ix.ids[i];
    clip.codes = tok.encode(m);  // [T', P, Q]
    clip.codes.narrow(1, ix.persons[i], clip.codes.size(1) - ix.persons[i]).zero_();  // absent persons
    clip.frames = m.size(0);
    clip.persons = ix.persons[i];
    clip.captions = ix.captions[i];
    c.clips.push_back(std::move(clip));
    progress.add();
  }
  progress.finish();
  return c;
}

std::vector<std::string> encode_packed(MotionTokenizer& tok, const std::string& data, const std::string& out) {
  std::vector<std::pair<std::string, std::string>> jobs;  // (split file, cache file)
  if (fs::is_directory(data)) {
    VIMO_CHECK(!fs::exists(out) || fs::is_directory(out),
               "--out '" + out + "' is a file; with a packed directory as --data it must be a directory (tokens/DIR)");
    for (const char* split : {"train", "val", "test"}) {
      const fs::path src = fs::path(data) / (std::string(split) + ".h5");
      if (fs::exists(src)) jobs.emplace_back(src.string(), (fs::path(out) / (std::string(split) + ".h5")).string());
    }
    VIMO_CHECK(!jobs.empty(), "packed directory '" + data +
                                  "' holds no train.h5, val.h5 or test.h5; make it with `vimo data prepare "
                                  "--config configs/data/<dataset>.yaml`");
  } else {
    VIMO_CHECK(fs::exists(data), "packed split '" + data + "' does not exist; make it with `vimo data prepare "
                                 "--config configs/data/<dataset>.yaml`");
    VIMO_CHECK(!fs::is_directory(out), "--out '" + out + "' is a directory; with one split as --data give a file (x.h5)");
    jobs.emplace_back(data, out);
  }
  // Everything is encoded before anything is written, so a bad split leaves no cache behind.
  std::vector<data::TokenCacheContents> contents;
  for (const auto& [src, dst] : jobs) contents.push_back(encode_split(tok, src));
  std::vector<std::string> written;
  for (size_t j = 0; j < jobs.size(); ++j) {
    data::write_token_cache(jobs[j].second, contents[j]);
    written.push_back(jobs[j].second);
  }
  return written;
}

}  // namespace vimo::tokenizer

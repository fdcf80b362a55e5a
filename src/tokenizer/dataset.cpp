// Stage-1 data: clips of a packed split, feature statistics, and the `vimo tokenizer train` entry.
#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/tensor_io.h"
#include "vimo/data/packed.h"
#include "vimo/tokenizer/recipe.h"

namespace fs = std::filesystem;

namespace vimo::tokenizer {

namespace {
const char* kMakeData =
    "make one with `vimo data synth` + `vimo data prepare --config configs/data/synthetic.yaml` (synthetic), "
    "or `vimo data prepare --config configs/data/<dataset>.yaml` for real data, then pass data.packed=DIR";
}

std::vector<torch::Tensor> load_split(const std::string& dir, const std::string& split) {
  VIMO_CHECK(!dir.empty(), std::string("data.packed is not set; ") + kMakeData);
  VIMO_CHECK(fs::is_directory(dir), "data.packed='" + dir + "' does not exist; " + kMakeData);
  const std::string path = (fs::path(dir) / (split + ".h5")).string();
  VIMO_CHECK(fs::exists(path), "packed split '" + path + "' does not exist; " + kMakeData);
  auto ds = data::PackedDataset::open(path);
  std::vector<torch::Tensor> clips;
  clips.reserve(ds.size());
  for (int64_t i = 0; i < ds.size(); ++i) clips.push_back(ds.clip(i).motion.to(torch::kFloat).contiguous());
  VIMO_CHECK(!clips.empty(), "packed split '" + path + "' holds no clips");
  return clips;
}

std::pair<torch::Tensor, torch::Tensor> load_stats(const std::string& dir, const std::vector<torch::Tensor>& clips) {
  const std::string path = (fs::path(dir) / "stats.safetensors").string();
  if (fs::exists(path)) {
    auto st = core::SafeTensors::open(path);
    VIMO_CHECK(st.contains("mean") && st.contains("std"), "'" + path + "' lacks the tensors 'mean' and 'std'");
    return {st.get("mean").to(torch::kFloat).clone(), st.get("std").to(torch::kFloat).clone()};
  }
  log::warn("'", path, "' not found; computing feature statistics from the training split");
  std::vector<torch::Tensor> rows;
  for (const auto& c : clips) rows.push_back(c.reshape({-1, c.size(-1)}));
  auto all = torch::cat(rows).to(torch::kDouble);
  return {all.mean(0).to(torch::kFloat), all.std(0).to(torch::kFloat)};
}

int train_tokenizer(const TokenizerConfig& c, const std::string& yaml) {
  auto train = load_split(c.data.packed, "train");
  std::vector<torch::Tensor> val;
  if (fs::exists(fs::path(c.data.packed) / "val.h5")) val = load_split(c.data.packed, "val");
  else log::warn("no val split in '", c.data.packed, "': training without validation");
  const int64_t f = train.front().size(-1);
  VIMO_CHECK(f == c.model.o.feature_dim, "the dataset '" + c.data.packed + "' has " + std::to_string(f) +
                                             "-d features but model.feature_dim=" +
                                             std::to_string(c.model.o.feature_dim) +
                                             "; set model.feature_dim or use a matching dataset");
  auto [mean, sd] = load_stats(c.data.packed, train);
  return train_tokenizer_on(c, yaml, std::move(train), std::move(val), mean, sd);
}

}  // namespace vimo::tokenizer

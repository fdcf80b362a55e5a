// The motion tokenizer facade used by later stages and the CLI: a trained run directory loaded for
// encoding two-person clips to codes [T/4, P, Q] and decoding them back; packed splits to token caches.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "vimo/data/token_cache.h"
#include "vimo/tokenizer/rqvae.h"

namespace vimo::tokenizer {

class MotionTokenizer {
 public:
  // Loads the weights of <run_dir>/best/ (else the latest complete checkpoint) into an RQ-VAE built
  // from the architecture stored in their metadata; keys the metadata lacks (runs of older vimo)
  // are read leniently from the run's config.yaml (model.<key>; other keys ignored), else take
  // their defaults. A missing run, one without a complete checkpoint, or unreadable weights is a
  // vimo::Error naming the path and the fix.
  static MotionTokenizer load(const std::string& run_dir, torch::Device device = torch::kCPU);
  // clip [T, P, F] or [T, F] raw features -> codes [ceil(T/4), P, Q] int64. T is padded to a
  // multiple of 4 by repeating the last frame.
  torch::Tensor encode(const torch::Tensor& clip);
  // codes [T', P, L] or [T', L] (L <= Q layers, each in 0..K-1) -> features [4 T', P, F].
  torch::Tensor decode(const torch::Tensor& codes);
  const RqvaeOptions& options() const { return model_->options(); }
  // The run's metadata as loaded: "format", every architecture key (as architecture_metadata
  // writes them) and "data.packed" (the dataset it was trained on; "" when unknown).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& trained_on() const { return metadata_.at("data.packed"); }
  Rqvae& model() { return model_; }
  const std::string& run_dir() const { return run_dir_; }
  const std::string& checkpoint() const { return checkpoint_; }
  torch::Device device() const { return device_; }

 private:
  MotionTokenizer(Rqvae m, std::map<std::string, std::string> meta, std::string run, std::string ckpt,
                  torch::Device d)
      : model_(std::move(m)), metadata_(std::move(meta)), run_dir_(std::move(run)), checkpoint_(std::move(ckpt)),
        device_(d) {}
  Rqvae model_;
  std::map<std::string, std::string> metadata_;
  std::string run_dir_, checkpoint_;
  torch::Device device_;
};

// Every clip of a packed split through `tok`: codes [T', P, Q] (zeros for absent persons), id,
// frames, persons and captions; `split_h5` is recorded as the source.
data::TokenCacheContents encode_split(MotionTokenizer& tok, const std::string& split_h5);
// `vimo tokenizer encode --data`: a packed directory (each of {train,val,test}.h5 present ->
// <out>/<split>.h5) or one split file (-> the file `out`). Every split is encoded before any file
// is written (each atomically). Returns the files written.
std::vector<std::string> encode_packed(MotionTokenizer& tok, const std::string& data, const std::string& out);

}  // namespace vimo::tokenizer

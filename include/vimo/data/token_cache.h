// Token caches: every clip of a packed split as motion codes [T/4, P, Q] with its id, captions and
// length, in one HDF5 file per split (layout in docs/tokenizer.md), the input of stages 2 and 3.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vimo::data {

constexpr int64_t kTokenCacheFormatVersion = 2;

struct TokenCacheInfo {
  int64_t codebook_size = 0, num_quantizers = 0, downsample = 4;
  std::string tokenizer_run, tokenizer_checkpoint, source;  // source: the packed split file
};

struct TokenClip {
  std::string id;
  torch::Tensor codes;   // [T', P, Q] int64 (P = persons dimension of the cache, zeros for an absent person)
  int64_t frames = 0;    // motion frames before downsampling
  int persons = 2;       // persons present (1 or 2)
  std::vector<std::string> captions;
};

struct TokenCacheContents {
  TokenCacheInfo info;
  std::vector<TokenClip> clips;
};

// Writes atomically (temporary name, then rename). codes stored int16 when K <= 32768, else int32.
// Every clip must have codes [T', P, Q] with the same P and Q = info.num_quantizers, values in 0..K-1.
void write_token_cache(const std::string& path, const TokenCacheContents& c);

class TokenCache {
 public:
  // Reads the whole file into memory; a missing, garbled or inconsistent file is a vimo::Error
  // naming it and what is wrong.
  static TokenCache open(const std::string& path);
  const std::string& path() const { return path_; }
  const TokenCacheInfo& info() const { return info_; }
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }  // clips
  int persons_dim() const { return persons_dim_; }                   // P of the codes array
  TokenClip clip(int64_t i) const;
  const std::string& id(int64_t i) const;
  std::optional<int64_t> find(const std::string& id) const;
  // Throws vimo::Error naming this file, its K/Q, the expected K/Q and `who` (e.g. the tokenizer run),
  // and the fix (re-encode with `vimo tokenizer encode --run ...`).
  void check_layout(int64_t codebook_size, int64_t num_quantizers, const std::string& who) const;

 private:
  void check_index(int64_t i) const;
  std::string path_;
  TokenCacheInfo info_;
  int persons_dim_ = 0;
  torch::Tensor codes_;  // [N_steps, P, Q] int32
  std::vector<int64_t> offsets_, lengths_, frames_, caption_offsets_;
  std::vector<int32_t> persons_;
  std::vector<std::string> ids_, captions_;
  std::unordered_map<std::string, int64_t> by_id_;
};

}  // namespace vimo::data

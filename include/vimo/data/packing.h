// Token sequences into LM batches: right-padded rows, or packed rows holding several sequences each
// with per-sequence positions and a block-diagonal causal mask (segment ids).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vimo::data {

// One training sequence: ids and aligned targets (targets[t] = the token position t predicts, or
// -100 where no loss is taken).
struct TokenSeq {
  std::vector<int> ids;
  std::vector<int64_t> targets;
  int64_t tag = 0;  // the caller's label (e.g. a task index), kept per sequence
  // Depth-head sequences (docs/depth_head.md), else empty: per position `levels` codes of its motion
  // slot (-1 elsewhere) and `levels` depth targets (-100 where none), row-major [ids.size(), levels].
  int64_t levels = 0;
  std::vector<int> codes;
  std::vector<int64_t> depth_targets;
};

struct LmBatch {
  torch::Tensor ids;          // [B, T] int64 (pad id past each row's content)
  torch::Tensor targets;      // [B, T] int64, -100 where no loss
  torch::Tensor segment_ids;  // [B, T] int64: sequence index within its row, -1 on padding
  torch::Tensor positions;    // [B, T] int64: position within its sequence
  torch::Tensor tags;         // [B, T] int64: the tag of each token's sequence, -1 on padding
  torch::Tensor codes;          // [B, T, Q] int64 slot codes, -1 elsewhere; undefined without depth sequences
  torch::Tensor depth_targets;  // [B, T, Q] int64, -100 where none; undefined likewise
  int64_t sequences = 0, tokens = 0;  // real tokens (not padding)
};

// Rows = groups of sequences; each group becomes one row (a group of one: plain padding). Rows are
// padded to the longest row, or to `length` when it is larger.
LmBatch make_batch(const std::vector<std::vector<TokenSeq>>& rows, int64_t pad_id, int64_t length = 0);

}  // namespace vimo::data

// Padded and packed LM batches (data/packing.h).
#include "vimo/data/packing.h"

#include "vimo/core/error.h"

namespace vimo::data {

LmBatch make_batch(const std::vector<std::vector<TokenSeq>>& rows, int64_t pad_id, int64_t length) {
  VIMO_CHECK(!rows.empty(), "make_batch: no rows");
  int64_t T = length;
  for (const auto& r : rows) {
    int64_t n = 0;
    for (const auto& s : r) {
      VIMO_CHECK(s.ids.size() == s.targets.size(), "make_batch: a sequence has " + std::to_string(s.ids.size()) +
                                                       " ids but " + std::to_string(s.targets.size()) + " targets");
      n += static_cast<int64_t>(s.ids.size());
    }
    T = std::max(T, n);
  }
  VIMO_CHECK(T > 0, "make_batch: every row is empty");
  int64_t Q = 0;
  for (const auto& r : rows)
    for (const auto& s : r) {
      VIMO_CHECK(Q == 0 || s.levels == 0 || s.levels == Q, "make_batch: sequences with " + std::to_string(Q) + " and " +
                                                               std::to_string(s.levels) + " depth levels in one batch");
      Q = std::max(Q, s.levels);
      VIMO_CHECK(s.codes.size() == s.ids.size() * static_cast<size_t>(s.levels) && s.depth_targets.size() == s.codes.size(),
                 "make_batch: a depth sequence's codes or targets do not hold levels x ids entries");
    }
  const int64_t B = static_cast<int64_t>(rows.size());
  LmBatch b;
  b.ids = torch::full({B, T}, pad_id, torch::kLong);
  b.targets = torch::full({B, T}, int64_t{-100}, torch::kLong);
  b.segment_ids = torch::full({B, T}, int64_t{-1}, torch::kLong);
  b.positions = torch::zeros({B, T}, torch::kLong);
  b.tags = torch::full({B, T}, int64_t{-1}, torch::kLong);
  auto ids = b.ids.accessor<int64_t, 2>(), tg = b.targets.accessor<int64_t, 2>(),
       seg = b.segment_ids.accessor<int64_t, 2>(), pos = b.positions.accessor<int64_t, 2>(),
       tag = b.tags.accessor<int64_t, 2>();
  if (Q > 0) {
    b.codes = torch::full({B, T, Q}, int64_t{-1}, torch::kLong);
    b.depth_targets = torch::full({B, T, Q}, int64_t{-100}, torch::kLong);
  }
  for (int64_t r = 0; r < B; ++r) {
    int64_t t = 0, k = 0;
    for (const auto& s : rows[r]) {
      if (Q > 0 && s.levels > 0) {
        const auto n = static_cast<int64_t>(s.ids.size());
        b.codes[r].narrow(0, t, n).copy_(torch::tensor(s.codes, torch::kInt).to(torch::kLong).view({n, Q}));
        b.depth_targets[r].narrow(0, t, n).copy_(torch::tensor(s.depth_targets, torch::kLong).view({n, Q}));
      }
      for (size_t i = 0; i < s.ids.size(); ++i, ++t) {
        ids[r][t] = s.ids[i];
        tg[r][t] = s.targets[i];
        seg[r][t] = k;
        pos[r][t] = static_cast<int64_t>(i);
        tag[r][t] = s.tag;
      }
      ++k;
      ++b.sequences;
    }
    b.tokens += t;
  }
  return b;
}

}  // namespace vimo::data

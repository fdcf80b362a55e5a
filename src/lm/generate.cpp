// Generation loop over the KV cache with transformers-compatible logits processing.
#include "vimo/lm/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>

#include "vimo/core/error.h"

namespace vimo::lm {

void apply_repetition_penalty(torch::Tensor& logits, const std::vector<std::vector<int64_t>>& tokens, double penalty) {
  if (penalty == 1.0) return;
  for (int64_t b = 0; b < logits.size(0); ++b) {
    if (tokens[b].empty()) continue;
    auto ids = torch::tensor(tokens[b], torch::kLong).to(logits.device());
    auto row = logits[b];
    auto s = row.gather(0, ids);
    s = torch::where(s < 0, s * penalty, s / penalty);
    row.scatter_(0, ids, s);
  }
}

torch::Tensor sample_next(const torch::Tensor& logits0, const GenerateOptions& o, torch::Generator& gen) {
  if (o.greedy) return logits0.argmax(-1);
  auto logits = logits0 / o.temperature;
  const double ninf = -std::numeric_limits<double>::infinity();
  const int64_t V = logits.size(-1);
  if (o.top_k > 0 && o.top_k < V) {
    auto kth = std::get<0>(logits.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);  // [B, 1]
    logits = logits.masked_fill(logits < kth, ninf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = logits.sort(-1, /*descending=*/true);
    auto probs = sorted.softmax(-1);
    auto before = probs.cumsum(-1) - probs;  // mass of the more likely tokens
    auto drop_sorted = before > o.top_p;     // the first token is never dropped
    auto drop = torch::zeros_like(drop_sorted).scatter(-1, idx, drop_sorted);
    logits = logits.masked_fill(drop, ninf);
  }
  auto probs = logits.softmax(-1).to(torch::kCPU);
  return at::multinomial(probs, 1, false, gen).squeeze(-1).to(logits0.device());
}

std::vector<std::vector<int64_t>> generate(LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& o) {
  VIMO_CHECK(!prompts.empty(), "generate: no prompts");
  VIMO_CHECK(o.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
  VIMO_CHECK(o.greedy || o.temperature > 0, "generate: temperature must be positive (or use greedy decoding)");
  c10::InferenceMode inference;  // no autograd bookkeeping for the many small per-step tensors
  const bool was_training = m->is_training();
  m->eval();
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t T = 0;
  for (const auto& p : prompts) {
    VIMO_CHECK(!p.empty(), "generate: a prompt is empty (give at least one token, e.g. BOS)");
    T = std::max<int64_t>(T, static_cast<int64_t>(p.size()));
  }
  const auto dev = m->device();
  // Left padding keeps every sequence's newest token in the last column.
  auto ids = torch::full({B, T}, o.pad_token, torch::kLong);
  auto mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size()), off = T - n;
    ids[b].narrow(0, off, n).copy_(torch::tensor(prompts[b], torch::kLong));
    mask[b].narrow(0, off, n).fill_(1);
  }
  const int64_t E = o.extra_width;
  torch::Tensor extra_all;  // [B, T, E] the prompts' extra ids (left-padded like the ids)
  if (E > 0) {
    extra_all = torch::full({B, T, E}, int64_t{-1}, torch::kLong);
    VIMO_CHECK(o.prompt_extra.empty() || static_cast<int64_t>(o.prompt_extra.size()) == B,
               "generate: prompt_extra needs one entry per prompt");
    for (int64_t b = 0; b < static_cast<int64_t>(o.prompt_extra.size()); ++b) {
      const auto& x = o.prompt_extra[b];
      if (!x.defined() || x.numel() == 0) continue;
      const int64_t n = static_cast<int64_t>(prompts[b].size());
      VIMO_CHECK(x.dim() == 2 && x.size(0) == n && x.size(1) == E,
                 "generate: prompt_extra[" + std::to_string(b) + "] must be [" + std::to_string(n) + ", " + std::to_string(E) +
                     "], got " + c10::str(x.sizes()));
      extra_all[b].narrow(0, T - n, n).copy_(x);
    }
  }
  ids = ids.to(dev);
  mask = mask.to(dev);
  const bool padded = !mask.all().item<bool>();
  std::vector<std::vector<int64_t>> seen = prompts, out(B);
  std::vector<bool> done(B, false);
  KVCache cache;
  if (o.use_cache) cache = m->make_cache(B, T + o.max_new_tokens);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  torch::Tensor step_ids = ids, all_ids = ids, all_mask = mask, step_extra = extra_all;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    ForwardOptions f;
    f.last_only = true;
    if (o.use_cache) {
      f.cache = &cache;
      if (padded) f.attention_mask = step == 0 ? mask : torch::ones({B, 1}, mask.options());
    } else if (padded) {
      f.attention_mask = all_mask;
    }
    if (E > 0) f.extra_ids = o.use_cache ? step_extra : extra_all;
    auto h = m->hidden(o.use_cache ? step_ids : all_ids, f);
    h = h.narrow(1, h.size(1) - 1, 1);                               // [B, 1, H]
    auto logits = m->head(h).select(1, 0).to(torch::kFloat32);  // [B, V]
    apply_repetition_penalty(logits, seen, o.repetition_penalty);
    if (o.processor) o.processor(logits, seen, step);
    auto next = sample_next(logits, o, gen).to(torch::kCPU);
    torch::Tensor extra;
    if (E > 0) extra = torch::full({B, E}, int64_t{-1}, torch::kLong);
    if (o.slot_hook) o.slot_hook(h.select(1, 0), next, extra, step);
    auto acc = next.accessor<int64_t, 1>();
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) {
        acc[b] = o.pad_token;
        continue;
      }
      out[b].push_back(acc[b]);
      seen[b].push_back(acc[b]);
      if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), acc[b]) != o.stop_tokens.end()) done[b] = true;
      all_done = all_done && done[b];
    }
    if (all_done) break;
    step_ids = next.unsqueeze(1).to(dev);
    if (E > 0) {
      for (int64_t b = 0; b < B; ++b)
        if (done[b]) extra[b].fill_(-1);
      step_extra = extra.unsqueeze(1);
      if (!o.use_cache) extra_all = torch::cat({extra_all, step_extra}, 1);
    }
    if (!o.use_cache) {
      all_ids = torch::cat({all_ids, step_ids}, 1);
      all_mask = torch::cat({all_mask, torch::ones({B, 1}, all_mask.options())}, 1);
    }
  }
  if (was_training) m->train();
  return out;
}

}  // namespace vimo::lm

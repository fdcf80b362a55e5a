// Generation loop over the KV cache with transformers-compatible logits processing.
#include "vimo/lm/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

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

torch::Tensor sampling_probs(const torch::Tensor& logits0, const GenerateOptions& o) {
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
  return logits.softmax(-1);
}

namespace {

// sample_next on CPU float32 logits [B, V] in plain loops: at batch 1 a decoding step's few torch ops
// cost more than the arithmetic on the row (the depth head samples Q times per slot).
torch::Tensor sample_rows_cpu(const torch::Tensor& logits, const GenerateOptions& o, torch::Generator& gen) {
  const int64_t B = logits.size(0), V = logits.size(1);
  auto out = torch::empty({B}, torch::kLong);
  int64_t* po = out.data_ptr<int64_t>();
  const float* pl = logits.data_ptr<float>();
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> x(static_cast<size_t>(V)), sorted;
  std::vector<double> p(static_cast<size_t>(V));
  std::vector<int64_t> order;
  auto* cpu = at::check_generator<at::CPUGeneratorImpl>(gen);
  for (int64_t b = 0; b < B; ++b) {
    const float* row = pl + b * V;
    if (o.greedy) {  // the first of equal maxima, as argmax
      int64_t best = 0;
      for (int64_t j = 1; j < V; ++j)
        if (row[j] > row[best]) best = j;
      po[b] = best;
      continue;
    }
    const float t = static_cast<float>(o.temperature);
    for (int64_t j = 0; j < V; ++j) x[j] = row[j] / t;
    if (o.top_k > 0 && o.top_k < V) {  // keep the logits at or above the k-th largest
      sorted.assign(x.begin(), x.end());
      std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<float>());
      const float kth = sorted[static_cast<size_t>(o.top_k - 1)];
      for (auto& v : x)
        if (v < kth) v = ninf;
    }
    float mx = ninf;
    for (float v : x) mx = std::max(mx, v);
    VIMO_CHECK(mx > ninf && std::isfinite(mx), "sampling: no token of row " + std::to_string(b) + " has a finite logit");
    double z = 0;
    for (int64_t j = 0; j < V; ++j) z += (p[j] = x[j] == ninf ? 0.0 : std::exp(static_cast<double>(x[j] - mx)));
    if (o.top_p < 1.0) {  // drop a token once the more likely ones hold more than top_p of the mass
      order.resize(static_cast<size_t>(V));
      for (int64_t j = 0; j < V; ++j) order[j] = j;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return x[a] > x[c]; });
      double before = 0, kept = 0;
      for (int64_t i = 0; i < V; ++i) {
        const int64_t j = order[i];
        const double pj = p[j] / z;
        if (before > o.top_p) p[j] = 0;
        else kept += p[j];
        before += pj;
      }
      z = kept;
    }
    VIMO_CHECK(z > 0 && std::isfinite(z), "sampling: row " + std::to_string(b) + " has no finite distribution (NaN logits?)");
    double u;
    {
      std::lock_guard<std::mutex> lock(cpu->mutex_);
      at::uniform_real_distribution<double> uni(0.0, 1.0);
      u = uni(cpu) * z;
    }
    int64_t pick = -1;
    double acc = 0;
    for (int64_t j = 0; j < V; ++j) {
      if (p[j] <= 0) continue;
      pick = j;  // the last token with mass absorbs rounding at the top end
      if ((acc += p[j]) > u) break;
    }
    po[b] = pick;
  }
  return out;
}

}  // namespace

torch::Tensor sample_next(const torch::Tensor& logits0, const GenerateOptions& o, torch::Generator& gen) {
  if (logits0.device().is_cpu() && logits0.scalar_type() == torch::kFloat32 && logits0.dim() == 2)
    return sample_rows_cpu(logits0.contiguous(), o, gen);
  if (o.greedy) return logits0.argmax(-1);
  auto probs = sampling_probs(logits0, o).to(torch::kCPU);
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
  // Classifier-free guidance: the unconditional twins of the guided rows follow the B prompts.
  std::vector<const std::vector<int64_t>*> rows;
  for (const auto& p : prompts) rows.push_back(&p);
  std::vector<int64_t> twin_of;  // [U] the guided row of each twin
  if (o.guidance != 1.0 && !o.uncond_prompts.empty()) {
    VIMO_CHECK(o.uncond_prompts.size() == prompts.size(),
               "generate: uncond_prompts needs one entry per prompt (an empty one leaves that row unguided)");
    for (int64_t b = 0; b < B; ++b)
      if (!o.uncond_prompts[b].empty()) twin_of.push_back(b), rows.push_back(&o.uncond_prompts[b]);
  }
  const int64_t U = static_cast<int64_t>(twin_of.size()), R = B + U;
  VIMO_CHECK(U == 0 || (o.extra_width == 0 && !o.slot_hook),
             "generate: classifier-free guidance needs a flat layout (no extra ids, no slot hook)");
  int64_t T = 0;
  for (const auto* p : rows) {
    VIMO_CHECK(!p->empty(), "generate: a prompt is empty (give at least one token, e.g. BOS)");
    T = std::max<int64_t>(T, static_cast<int64_t>(p->size()));
  }
  const auto dev = m->device();
  // Left padding keeps every sequence's newest token in the last column.
  auto ids = torch::full({R, T}, o.pad_token, torch::kLong);
  auto mask = torch::zeros({R, T}, torch::kLong);
  for (int64_t b = 0; b < R; ++b) {
    const auto& p = *rows[static_cast<size_t>(b)];
    const int64_t n = static_cast<int64_t>(p.size()), off = T - n;
    ids[b].narrow(0, off, n).copy_(torch::tensor(p, torch::kLong));
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
  const auto twin_index = torch::tensor(twin_of, torch::kLong);
  const auto twin_index_dev = twin_index.to(dev);
  std::vector<bool> done(B, false);
  KVCache cache;
  if (o.use_cache) cache = m->make_cache(R, T + o.max_new_tokens);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  torch::Tensor step_ids = ids, all_ids = ids, all_mask = mask, step_extra = extra_all;
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    ForwardOptions f;
    f.last_only = true;
    if (o.use_cache) {
      f.cache = &cache;
      if (padded) f.attention_mask = step == 0 ? mask : torch::ones({R, 1}, mask.options());
    } else if (padded) {
      f.attention_mask = all_mask;
    }
    if (E > 0) f.extra_ids = o.use_cache ? step_extra : extra_all;
    auto h = m->hidden(o.use_cache ? step_ids : all_ids, f);
    h = h.narrow(1, h.size(1) - 1, 1);                               // [R, 1, H]
    auto all_logits = m->head(h).select(1, 0).to(torch::kFloat32);  // [R, V]
    auto logits = U > 0 ? all_logits.narrow(0, 0, B) : all_logits;  // [B, V]
    if (U > 0) {  // first, as transformers' UnbatchedClassifierFreeGuidanceLogitsProcessor
      auto twins = all_logits.narrow(0, B, U);
      auto cond = logits.index_select(0, twin_index_dev);
      logits.index_copy_(0, twin_index_dev, twins + (cond - twins) * o.guidance);
    }
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
    if (U > 0) next = torch::cat({next, next.index_select(0, twin_index)});  // each twin is fed its row's token
    step_ids = next.unsqueeze(1).to(dev);
    if (E > 0) {
      for (int64_t b = 0; b < B; ++b)
        if (done[b]) extra[b].fill_(-1);
      step_extra = extra.unsqueeze(1);
      if (!o.use_cache) extra_all = torch::cat({extra_all, step_extra}, 1);
    }
    if (!o.use_cache) {
      all_ids = torch::cat({all_ids, step_ids}, 1);
      all_mask = torch::cat({all_mask, torch::ones({R, 1}, all_mask.options())}, 1);
    }
  }
  if (was_training) m->train();
  return out;
}

}  // namespace vimo::lm

// Helpers behind the `vimo lm` commands.
#include "vimo/lm/tools.h"

#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/run.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"

namespace vimo::lm {

std::vector<int64_t> parse_tokens(const std::string& text) {
  std::string s = text;
  std::replace(s.begin(), s.end(), ',', ' ');
  std::istringstream in(s);
  std::vector<int64_t> out;
  for (std::string tok; in >> tok;) {
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    VIMO_CHECK(used == tok.size(), "token list '" + text + "': '" + tok + "' is not an integer id");
    out.push_back(v);
  }
  VIMO_CHECK(!out.empty(), "token list '" + text + "' is empty");
  return out;
}

torch::Tensor forward_padded(LlamaForCausalLM& m, const std::vector<std::vector<int64_t>>& seqs, const std::string& padding) {
  VIMO_CHECK(padding == "left" || padding == "right", "padding must be 'left' or 'right', got '" + padding + "'");
  VIMO_CHECK(!seqs.empty(), "no token sequences given");
  torch::NoGradGuard g;
  m->eval();
  const int64_t B = static_cast<int64_t>(seqs.size());
  int64_t T = 0;
  for (const auto& s : seqs) T = std::max<int64_t>(T, static_cast<int64_t>(s.size()));
  auto ids = torch::zeros({B, T}, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(seqs[b].size()), off = padding == "left" ? T - n : 0;
    VIMO_CHECK(n > 0, "token sequence " + std::to_string(b) + " is empty");
    ids[b].narrow(0, off, n).copy_(torch::tensor(seqs[b], torch::kLong));
    mask[b].narrow(0, off, n).fill_(1);
  }
  ForwardOptions f;
  if (B > 1) f.attention_mask = mask.to(m->device());
  auto logits = m->forward(ids.to(m->device()), f).to(torch::kCPU, torch::kFloat32);  // [B, T, V]
  auto out = torch::zeros_like(logits);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(seqs[b].size()), off = padding == "left" ? T - n : 0;
    out[b].narrow(0, 0, n).copy_(logits[b].narrow(0, off, n));
  }
  return out;
}

LlamaForCausalLM load_for_inference(const std::string& model_dir, const std::string& adapter_dir, const std::string& dtype,
                                    const std::string& device, bool merge) {
  LoadOptions lo;
  if (!dtype.empty() && dtype != "auto") lo.dtype = dtype_from_name(dtype, "--dtype");
  lo.device = core::resolve_device(device);
  auto m = load_pretrained(model_dir, lo);
  if (!adapter_dir.empty()) {
    load_adapter(m, adapter_dir);
    if (merge) merge_lora(m);
  }
  m->eval();
  return m;
}

LlamaForCausalLM build_from_config(const LmConfig& c, torch::Device device) {
  LlamaForCausalLM m{nullptr};
  if (!c.model.scratch()) {
    LoadOptions lo;
    lo.dtype = dtype_from_name(c.model.dtype, "model.dtype");
    lo.device = device;
    m = load_pretrained(c.model.base, lo);
  } else {
    m = build_random(c.model.arch.to_llama(c.model.vocab_size, c.model.dtype), c.model.arch.init_std,
                     static_cast<uint64_t>(c.run.seed), device);
  }
  if (c.vocab.size > 0) m->resize_vocab(c.vocab.size, static_cast<uint64_t>(c.run.seed) + 1);
  if (c.lora.enabled) apply_lora(m, lora_options(c.lora, static_cast<uint64_t>(c.run.seed) + 2));
  return m;
}

}  // namespace vimo::lm

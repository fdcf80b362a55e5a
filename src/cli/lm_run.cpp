// `vimo lm merge` (an LM run's merged/ HF directory and PEFT adapter/) and `vimo lm step` (the loss
// and gradients of one training step, the quantities a stage-2 step applies, for parity checks).
#include <filesystem>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"
#include "vimo/core/run.h"
#include "vimo/core/tensor_io.h"
#include "vimo/lm/depth.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/lora.h"
#include "vimo/lm/loss.h"
#include "vimo/train/recipes/pretrain_task.h"

namespace fs = std::filesystem;

namespace vimo::cli {
namespace {

struct StepArgs {
  std::string model, adapter, batch, out;
  int64_t new_rows_from = -1;
  int threads = 0;
  bool full = false;  // every weight trains (a model trained from scratch): gradients under HF names
  std::string depth_head;  // depth-head tensors (docs/depth_head.md): the batch then has depth_codes/targets
  int64_t depth_heads = 4, motion_base = -1, codebook = 0;
};

// The depth head of `path` (sizes read from its tensors' shapes) attached to `m`; returns Q.
int64_t attach_depth_file(lm::LlamaForCausalLM& m, const StepArgs& a) {
  VIMO_CHECK(fs::exists(a.depth_head), "depth head file '" + a.depth_head + "' does not exist");
  VIMO_CHECK(a.codebook > 0 && a.motion_base >= 0, "--depth-head needs --codebook K and --motion-base M");
  auto st = core::SafeTensors::open(a.depth_head);
  auto shape = [&](const std::string& n) {
    VIMO_CHECK(st.contains("depth_head." + n), "'" + a.depth_head + "' has no tensor 'depth_head." + n + "'");
    return st.get("depth_head." + n).sizes().vec();
  };
  lm::DepthHeadOptions o;
  o.hidden = shape("in_proj.weight")[1];
  o.width = shape("in_proj.weight")[0];
  o.levels = shape("pos_embed")[0];
  o.codes = a.codebook;
  o.heads = a.depth_heads;
  o.layers = 0;
  while (st.contains("depth_head.layers." + std::to_string(o.layers) + ".qkv.weight")) ++o.layers;
  o.ffn = o.layers > 0 ? shape("layers.0.gate.weight")[0] : 0;
  VIMO_CHECK(a.motion_base + o.levels * o.codes <= m->config().vocab_size,
             "--motion-base " + std::to_string(a.motion_base) + " + " + std::to_string(o.levels) + " levels x " +
                 std::to_string(o.codes) + " codes exceed the vocabulary of " + std::to_string(m->config().vocab_size));
  lm::DepthHead head(o, torch::TensorOptions().dtype(torch::kFloat32));
  m->attach_depth_head(head.ptr());
  vim::load_depth_head(m, a.depth_head);
  return o.levels;
}

void step(const StepArgs& a) {
  core::apply_threads(a.threads);
  auto m = lm::load_pretrained(a.model);
  if (!a.adapter.empty()) lm::load_adapter(m, a.adapter);
  const int64_t V = m->config().vocab_size;
  if (a.new_rows_from >= 0) {  // rows N.. become the trainable float32 tail, as stage 2 keeps them
    VIMO_CHECK(a.new_rows_from > 0 && a.new_rows_from < V, "--new-rows-from must be in 1.." + std::to_string(V - 1));
    torch::NoGradGuard ng;
    auto split = [&](lm::Embedding& e) {
      auto w = e->weight.detach().clone();
      e->weight.set_data(w.narrow(0, 0, a.new_rows_from).clone());
      e->set_tail(w.narrow(0, a.new_rows_from, V - a.new_rows_from).to(torch::kFloat32).clone());
    };
    split(m->model->embed_tokens);
    if (m->lm_head) split(m->lm_head);
  }
  VIMO_CHECK(!a.full || (a.adapter.empty() && a.new_rows_from < 0), "--full trains every weight; it takes no --adapter or --new-rows-from");
  if (!a.full) m->freeze_base();
  m->train();
  VIMO_CHECK(fs::exists(a.batch), "batch file '" + a.batch + "' does not exist");
  auto st = core::SafeTensors::open(a.batch);
  for (const char* k : {"input_ids", "labels"})
    VIMO_CHECK(st.contains(k), "batch file '" + a.batch + "' lacks the tensor '" + k + "'");
  auto ids = st.get("input_ids").to(torch::kLong);
  lm::ForwardOptions f;
  if (st.contains("position_ids")) f.positions = st.get("position_ids").to(torch::kLong);
  if (st.contains("segment_ids")) f.segment_ids = st.get("segment_ids").to(torch::kLong);
  torch::Tensor depth_targets;
  if (!a.depth_head.empty()) {
    const int64_t Q = attach_depth_file(m, a);
    for (const char* k : {"depth_codes", "depth_targets"})
      VIMO_CHECK(st.contains(k), "batch file '" + a.batch + "' lacks the tensor '" + k + "' (needed with --depth-head)");
    auto codes = st.get("depth_codes").to(torch::kLong);
    depth_targets = st.get("depth_targets").to(torch::kLong);
    for (const auto& [name, t] : {std::pair<const char*, torch::Tensor>{"depth_codes", codes}, {"depth_targets", depth_targets}})
      VIMO_CHECK(t.dim() == 3 && t.size(0) == ids.size(0) && t.size(1) == ids.size(1) && t.size(2) == Q,
                 "batch tensor '" + std::string(name) + "' must be [" + std::to_string(ids.size(0)) + ", " +
                     std::to_string(ids.size(1)) + ", " + std::to_string(Q) + "] (Q from the depth head's pos_embed), got " +
                     c10::str(t.sizes()));
    VIMO_CHECK(codes.ge(-1).all().item<bool>() && codes.lt(a.codebook).all().item<bool>(),
               "batch tensor 'depth_codes' holds a code outside -1.." + std::to_string(a.codebook - 1));
    f.extra_ids = lm::slot_extra_ids(codes, a.motion_base, a.codebook);
  }
  auto parts = lm::motion_lm_loss(m, m->hidden(ids, f), lm::shift_labels(st.get("labels").to(torch::kLong)), depth_targets);
  VIMO_CHECK(parts.targets > 0, "the batch has no target token (every label is -100)");
  auto loss = parts.sum / static_cast<double>(parts.targets);
  loss.backward();
  core::NamedTensors out{{"loss", loss.detach().reshape({1})}};
  for (const auto& p : m->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    const std::string& n = p.key();
    VIMO_CHECK(p.value().grad().defined(), "no gradient reached '" + n + "'");
    if (n.rfind("depth_head.", 0) == 0) out.emplace_back(n, p.value().grad());
    else if (n == "model.embed_tokens.tail") out.emplace_back("new_rows.embed_tokens", p.value().grad());
    else if (n == "lm_head.tail") out.emplace_back("new_rows.lm_head", p.value().grad());
    else out.emplace_back(a.full ? n : "base_model.model." + n, p.value().grad());
  }
  core::save_safetensors(a.out, out);
  vimo::log::info("loss ", loss.item<double>(), " over ", parts.targets, " target tokens; wrote ", out.size(), " tensors to ", a.out);
}

Registrar reg(61, [](CLI::App& app) {
  auto* g = group(app, "lm", "the Llama-family language model: logits, generation, model directories");
  auto mr = std::make_shared<std::pair<std::string, std::string>>();
  auto shard = std::make_shared<int64_t>(0);
  auto* m = g->add_subcommand("merge", "write an LM run's merged HF directory (and its PEFT adapter for LoRA runs)");
  m->add_option("--run", mr->first, "LM run directory")->required();
  m->add_option("--out", mr->second, "merged directory (default <run>/merged)");
  m->add_option("--max-shard-bytes", *shard, "shard size of the safetensors (0: one file up to 5 GB)");
  m->callback([mr, shard] { train::export_run(mr->first, mr->second, *shard); });

  auto sa = std::make_shared<StepArgs>();
  auto* s = g->add_subcommand("step", "one training step's loss and gradients (LoRA and new rows) for a batch");
  s->add_option("--model", sa->model, "HF Llama directory")->required();
  s->add_option("--adapter", sa->adapter, "PEFT LoRA adapter directory (trained unmerged)");
  s->add_option("--batch", sa->batch, "safetensors: input_ids, labels (HF convention) [B, T]; position_ids, segment_ids optional")->required();
  s->add_option("--out", sa->out, "safetensors with loss and the gradients")->required();
  s->add_option("--new-rows-from", sa->new_rows_from, "rows N.. of the embedding (and head) train as new rows");
  s->add_option("--threads", sa->threads, "CPU threads; 0 = all cores");
  s->add_flag("--full", sa->full, "train every weight (no LoRA, nothing frozen): gradients under the HF tensor names");
  s->add_option("--depth-head", sa->depth_head, "depth-head tensors (docs/depth_head.md); the batch then needs depth_codes, depth_targets [B, T, Q]");
  s->add_option("--depth-heads", sa->depth_heads, "attention heads of the depth head");
  s->add_option("--motion-base", sa->motion_base, "first motion id of the vocabulary (depth head)");
  s->add_option("--codebook", sa->codebook, "codes per level K (depth head)");
  s->callback([sa] { step(*sa); });

  auto so = std::make_shared<train::ScoreOptions>();
  auto run = std::make_shared<std::string>();
  auto dev = std::make_shared<std::string>("cpu");
  auto* sc = g->add_subcommand("score", "an LM run on a token-cache split: loss/accuracy per task, generated m2t captions, t2m validity");
  sc->add_option("--run", *run, "LM run directory")->required();
  sc->add_option("--tokens", so->split, "token cache split (.h5), e.g. tokens/synthetic/test.h5")->required();
  sc->add_option("--out", so->out, "output directory (default <run>/score_<split>)");
  sc->add_option("--per-task", so->per_task, "scored samples per task (default: all eligible clips)");
  sc->add_option("--generate", so->generate, "clips per task to generate (m2t captions, t2m motions); 0 = none");
  sc->add_option("--device", *dev, "cpu | cuda[:N] | auto");
  sc->callback([so, run, dev] {
    core::apply_threads(0);
    if (so->out.empty()) so->out = (fs::path(*run) / ("score_" + fs::path(so->split).stem().string())).string();
    so->sampling.greedy = true;
    so->sampling.max_new = 48;
    auto model = vim::VimModel::load_run(*run, core::resolve_device(*dev));
    auto j = train::score_run(model, *so);
    std::cout << j.dump(2) << "\n";
  });
});

}  // namespace
}  // namespace vimo::cli

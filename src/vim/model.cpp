// Loading an LM run and generating with it under the motion-block constraints (vim/model.h).
#include "vimo/vim/model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <limits>

#include "vimo/core/checkpoint.h"
#include "vimo/core/config.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/tensor_io.h"
#include "vimo/lm/generate.h"
#include "vimo/lm/hf.h"
#include "vimo/vim/batches.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::vim {
namespace {
// Only the `generate` section of a run's config.yaml.
struct GenerateOnly {
  lm::LmGenerateSection generate;
  template <class V> void visit(V& v) { v.section("generate", generate); }
};
}  // namespace

lm::LmGenerateSection run_generate_section(const std::string& run) {
  core::ConfigSource src;
  const std::filesystem::path p = std::filesystem::path(run) / "config.yaml";
  if (std::filesystem::exists(p)) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(p.string());
    } catch (const std::exception& e) {
      throw Error("cannot read '" + p.string() + "' (" + e.what() + "); restore the run's config.yaml");
    }
    if (root["generate"] && root["generate"].IsMap())
      for (const auto& kv : root["generate"])
        src.set("generate." + kv.first.as<std::string>(), kv.second, {p.string(), -1});
  }
  return core::resolve_config<GenerateOnly>(src).generate;
}

GenerateSettings GenerateSettings::from(const lm::LmGenerateSection& s) {
  GenerateSettings g;
  g.max_new = s.max_new;
  g.greedy = s.greedy;
  g.temperature = s.temperature;
  g.top_k = s.top_k;
  g.top_p = s.top_p;
  g.seed = static_cast<uint64_t>(s.seed);
  g.repetition_penalty = s.repetition_penalty;
  g.guidance = s.guidance;
  return g;
}


json ModelSpec::to_json() const {
  json t = json::array();
  for (Task x : tasks) t.push_back(task_name(x));
  json l = nullptr;
  if (lora)
    l = {{"rank", lora->rank}, {"alpha", lora->alpha}, {"dropout", lora->dropout}, {"targets", lora->targets},
         {"rslora", lora->rslora}, {"seed", lora->seed}};
  return {{"format", "vimo-vim"}, {"version", 1}, {"stage", stage}, {"base", base}, {"base_vocab", base_vocab},
          {"tokenizer_run", tokenizer_run},
          {"motion", {{"codebook_size", codebook_size}, {"layers", layers},
                      {"tokenizer_quantizers", tokenizer_quantizers}, {"downsample", downsample}}},
          {"tasks", t}, {"caption_dropout", caption_dropout}, {"lora", l}, {"text_file", text_file}, {"motion_head", motion_head},
          {"depth_head", depth_head() ? json{{"width", depth.width}, {"layers", depth.layers}, {"heads", depth.heads},
                                             {"ffn", depth.ffn}}
                                      : json(nullptr)}};
}

ModelSpec ModelSpec::from_json(const json& j, const std::string& ctx) {
  ModelSpec s;
  try {
    VIMO_CHECK(j.value("format", "") == "vimo-vim", ctx + " is not a vimo LM description (\"format\" is not \"vimo-vim\")");
    s.stage = j.at("stage").get<std::string>();
    s.base = j.at("base").get<std::string>();
    s.base_vocab = j.at("base_vocab").get<int64_t>();
    s.tokenizer_run = j.at("tokenizer_run").get<std::string>();
    const auto& m = j.at("motion");
    s.codebook_size = m.at("codebook_size").get<int64_t>();
    s.layers = m.at("layers").get<int64_t>();
    s.tokenizer_quantizers = m.at("tokenizer_quantizers").get<int64_t>();
    s.downsample = m.at("downsample").get<int64_t>();
    for (const auto& t : j.at("tasks")) s.tasks.push_back(parse_task(t.get<std::string>(), ctx));
    s.caption_dropout = j.value("caption_dropout", 0.0);
    if (!j.at("lora").is_null()) {
      const auto& l = j["lora"];
      lm::LoraOptions o;
      o.rank = l.at("rank").get<int64_t>();
      o.alpha = l.at("alpha").get<double>();
      o.dropout = l.at("dropout").get<double>();
      o.targets = l.at("targets").get<std::vector<std::string>>();
      o.rslora = l.value("rslora", false);
      o.seed = l.value("seed", uint64_t{0});
      s.lora = o;
    }
    s.text_file = j.at("text_file").get<std::string>();
    s.motion_head = j.value("motion_head", std::string("flat"));
    VIMO_CHECK(s.motion_head == "flat" || s.motion_head == "depth",
               ctx + ": motion_head is '" + s.motion_head + "', not flat or depth");
    if (s.depth_head()) {
      const auto& d = j.at("depth_head");
      s.depth.width = d.at("width").get<int64_t>();
      s.depth.layers = d.at("layers").get<int64_t>();
      s.depth.heads = d.at("heads").get<int64_t>();
      s.depth.ffn = d.at("ffn").get<int64_t>();
    }
  } catch (const json::exception& e) {
    throw Error(ctx + " is malformed: " + e.what());
  }
  return s;
}

core::NamedTensors trainable_tensors(lm::LlamaForCausalLM& m) {
  core::NamedTensors out;
  for (const auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value().detach());
  return out;
}

void load_trainable_tensors(lm::LlamaForCausalLM& m, const std::string& path) {
  VIMO_CHECK(fs::exists(path), "weights file '" + path + "' does not exist");
  auto st = core::SafeTensors::open(path);
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    VIMO_CHECK(st.contains(p.key()), "'" + path + "' has no tensor '" + p.key() +
                                         "': it was written for another model (base, LoRA targets or vocabulary differ)");
    auto src = st.get(p.key());
    VIMO_CHECK(src.sizes() == p.value().sizes(), "tensor '" + p.key() + "' in '" + path + "' has shape " +
                                                     c10::str(src.sizes()) + ", the model needs " +
                                                     c10::str(p.value().sizes()));
    p.value().copy_(src.to(p.value().dtype()));
  }
}

void attach_depth_head(lm::LlamaForCausalLM& m, const ModelSpec& spec, uint64_t seed) {
  if (!spec.depth_head()) return;
  lm::DepthHeadOptions o = spec.depth;
  o.hidden = m->config().hidden_size;
  o.levels = spec.layers;
  o.codes = spec.codebook_size;
  lm::DepthHead head(o, torch::TensorOptions().dtype(torch::kFloat32).device(m->device()));
  head->init_weights(0.02, seed);
  m->attach_depth_head(head.ptr());
}

void save_depth_head(lm::LlamaForCausalLM& m, const std::string& path) {
  VIMO_CHECK(m->depth_head(), "save_depth_head: the LM has no depth head");
  const auto& o = m->depth_head()->options();
  core::NamedTensors t;
  for (const auto& p : m->depth_head()->named_parameters(true))
    t.emplace_back("depth_head." + p.key(), p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous());
  core::save_safetensors(path, t,
                         {{"format", "vimo-depth-head"}, {"hidden", std::to_string(o.hidden)}, {"width", std::to_string(o.width)},
                          {"layers", std::to_string(o.layers)}, {"heads", std::to_string(o.heads)},
                          {"ffn", std::to_string(o.ffn_size())}, {"levels", std::to_string(o.levels)},
                          {"codes", std::to_string(o.codes)}});
}

void load_depth_head(lm::LlamaForCausalLM& m, const std::string& path) {
  VIMO_CHECK(m->depth_head(), "load_depth_head: the LM has no depth head");
  VIMO_CHECK(fs::exists(path), "depth head file '" + path + "' does not exist (a depth-head run writes it beside merged/)");
  auto st = core::SafeTensors::open(path);
  torch::NoGradGuard ng;
  for (auto& p : m->depth_head()->named_parameters(true)) {
    const std::string n = "depth_head." + p.key();
    VIMO_CHECK(st.contains(n), "'" + path + "' has no tensor '" + n + "'");
    auto src = st.get(n);
    VIMO_CHECK(src.sizes() == p.value().sizes(), "tensor '" + n + "' in '" + path + "' has shape " + c10::str(src.sizes()) +
                                                     ", the depth head needs " + c10::str(p.value().sizes()));
    p.value().copy_(src.to(p.value().dtype()));
  }
}

lm::LlamaForCausalLM build_lm(const ModelSpec& spec, const lm::LlamaConfig& config, torch::Device device,
                              torch::ScalarType dtype, uint64_t seed) {
  lm::LlamaForCausalLM m{nullptr};
  if (spec.base == "scratch") {
    m = lm::LlamaForCausalLM(config, torch::TensorOptions().dtype(dtype));
    if (!device.is_cpu()) m->to(device);
    attach_depth_head(m, spec, seed);
    return m;
  }
  lm::LoadOptions lo;
  lo.dtype = dtype;
  lo.device = device;
  m = lm::load_pretrained(spec.base, lo);
  VIMO_CHECK(m->config().vocab_size == spec.base_vocab,
             "base '" + spec.base + "' has " + std::to_string(m->config().vocab_size) + " rows, the run was made on a base with " +
                 std::to_string(spec.base_vocab) + "; point model.base at the run's base model");
  m->resize_vocab(config.vocab_size, seed);
  if (spec.lora) lm::apply_lora(m, *spec.lora, /*freeze=*/true);
  else m->freeze_base();
  if (!device.is_cpu()) m->to(device);
  attach_depth_head(m, spec, seed);
  return m;
}

VimModel::VimModel(lm::LlamaForCausalLM lm, text::UnifiedVocab vocab, std::shared_ptr<text::TextTokenizer> text,
                   ModelSpec spec, Templates templates)
    : p_(std::make_shared<Parts>(std::move(lm), std::move(vocab), std::move(text), std::move(spec), std::move(templates))) {}

std::string VimModel::run_checkpoint(const std::string& run_dir) {
  VIMO_CHECK(fs::is_directory(run_dir), "LM run '" + run_dir + "' does not exist; train one with `vimo pretrain`");
  const fs::path best = fs::path(run_dir) / "best";
  if (fs::exists(best / "DONE") && fs::exists(best / "model.safetensors")) return best.string();
  core::CheckpointManager cm(run_dir, 0);
  auto latest = cm.latest();
  VIMO_CHECK(latest, "LM run '" + run_dir + "' has no complete checkpoint (no best/ and no checkpoints/step_*/DONE); "
                     "rerun its training command to resume it");
  return *latest;
}

VimModel VimModel::load_run(const std::string& run_dir, torch::Device device) {
  const fs::path lm_dir = fs::path(run_dir) / "lm";
  VIMO_CHECK(fs::exists(lm_dir / "vim.json"), "'" + run_dir + "' is not an LM run: it has no lm/vim.json "
                                              "(made by `vimo pretrain` or `vimo instruct`)");
  const std::string spec_path = (lm_dir / "vim.json").string();
  json j;
  try {
    j = json::parse(core::read_file(spec_path));
  } catch (const json::exception& e) {
    throw Error("'" + spec_path + "' is not valid JSON: " + e.what());
  }
  ModelSpec spec = ModelSpec::from_json(j, "'" + spec_path + "'");
  auto cfg = lm::LlamaConfig::load((lm_dir / "config.json").string());
  auto vocab = text::UnifiedVocab::load((lm_dir / "vocab.json").string());
  std::shared_ptr<text::TextTokenizer> text = text::load_text_tokenizer((lm_dir / spec.text_file).string());
  auto templates = Templates::load((lm_dir / "templates.yaml").string());
  const std::string ckpt = run_checkpoint(run_dir);
  const auto dtype = spec.base == "scratch" || device.is_cpu() ? torch::kFloat32 : torch::kBFloat16;
  auto m = build_lm(spec, cfg, device, dtype, 0);  // the depth head too, when the spec has one
  try {
    load_trainable_tensors(m, ckpt + "/model.safetensors");
  } catch (const Error& e) {
    throw Error("cannot load the LM of '" + run_dir + "' from " + ckpt + ": " + e.what());
  }
  m->eval();
  return VimModel(m, std::move(vocab), std::move(text), std::move(spec), std::move(templates));
}

tokenizer::MotionTokenizer& VimModel::motion_tokenizer() {
  if (!p_->motion) {
    auto t = std::make_shared<tokenizer::MotionTokenizer>(
        tokenizer::MotionTokenizer::load(p_->spec.tokenizer_run, p_->lm->device()));
    VIMO_CHECK(t->options().codebook_size == p_->spec.codebook_size && t->options().num_quantizers >= p_->spec.layers,
               "tokenizer run '" + p_->spec.tokenizer_run + "' has K=" + std::to_string(t->options().codebook_size) +
                   ", Q=" + std::to_string(t->options().num_quantizers) + " but the LM was trained on K=" +
                   std::to_string(p_->spec.codebook_size) + " with " + std::to_string(p_->spec.layers) + " levels");
    p_->motion = t;
  }
  return *p_->motion;
}

torch::Tensor VimModel::encode_motion(const torch::Tensor& f) {
  return motion_tokenizer().encode(f).narrow(2, 0, p_->spec.layers).contiguous();
}

torch::Tensor VimModel::decode_motion(const torch::Tensor& codes) { return motion_tokenizer().decode(codes); }

std::pair<std::vector<int64_t>, torch::Tensor> VimModel::lm_input(const std::vector<int>& flat) const {
  if (!p_->spec.depth_head()) return {std::vector<int64_t>(flat.begin(), flat.end()), torch::Tensor()};
  data::TokenSeq f;
  f.ids = flat;
  f.targets.assign(flat.size(), -100);
  const auto d = to_depth(f, p_->vocab);
  const int64_t n = static_cast<int64_t>(d.ids.size()), Q = d.levels;
  auto codes = torch::tensor(d.codes, torch::kInt).to(torch::kLong).view({n, Q});
  return {std::vector<int64_t>(d.ids.begin(), d.ids.end()),
          lm::slot_extra_ids(codes, p_->vocab.motion_base(), p_->spec.codebook_size)};
}

torch::Tensor VimModel::hidden(const data::LmBatch& b) {
  auto& m = p_->lm;
  lm::ForwardOptions f;  // host tensors: the model checks the ids there and moves them (no device read-back)
  f.segment_ids = b.segment_ids;
  f.positions = b.positions;
  if (p_->spec.depth_head()) {
    VIMO_CHECK(b.codes.defined(), "a depth-head model needs batches in the depth layout (render_sequence with depth)");
    f.extra_ids = lm::slot_extra_ids(b.codes, p_->vocab.motion_base(), p_->spec.codebook_size);
  } else {
    VIMO_CHECK(!b.codes.defined(), "a flat model was given a batch in the depth-head layout");
  }
  return m->hidden(b.ids, f);
}

lm::LossParts VimModel::loss(const torch::Tensor& h, const data::LmBatch& b) {
  return lm::motion_lm_loss(p_->lm, h, b.targets, b.depth_targets);
}

void VimModel::check_guidance() const {
  VIMO_CHECK(!p_->spec.depth_head(), "classifier-free guidance (generate.guidance / --guidance) works with a flat motion "
                                     "head only; this run has a depth head: use guidance 1");
  VIMO_CHECK(p_->spec.caption_dropout > 0,
             "classifier-free guidance (generate.guidance / --guidance) needs a model that also learned t2m without the "
             "caption; this run was trained with data.caption_dropout 0: use guidance 1, or train with data.caption_dropout=0.1");
}

void VimModel::check_task(Task t) const {
  const auto& ts = p_->spec.tasks;
  if (std::find(ts.begin(), ts.end(), t) != ts.end()) return;
  std::string known;
  for (Task x : ts) known += " " + task_name(x);
  throw Error("this run was not trained on task " + task_name(t) + "; it knows:" + known);
}

namespace {

const char* open_name(text::Segment::Kind k) {
  return k == text::Segment::Kind::kMotion ? "<motion>" : k == text::Segment::Kind::kMotionA ? "<motion_a>" : "<motion_b>";
}
const char* close_name(text::Segment::Kind k) {
  return k == text::Segment::Kind::kMotion ? "</motion>" : k == text::Segment::Kind::kMotionA ? "</motion_a>" : "</motion_b>";
}

const text::Segment::Kind kKinds[3] = {text::Segment::Kind::kMotion, text::Segment::Kind::kMotionA,
                                       text::Segment::Kind::kMotionB};
}  // namespace

// Per sequence: text mode (text ids or the end token; in a free turn also the motion open tokens) or
// inside a motion block (the legal ids of the current slot, the close token after a complete frame,
// only the close token at the step limit); a task's block is followed by the end token only, a free
// turn goes back to text.
struct DecodeConstraint {
  bool motion = false;
  bool free = false;
  int persons = 2;
  int64_t slots = 0;   // motion ids (depth: slots) emitted in the block
  bool closed = false;
  int close_id = -1;
  bool depth_now = false;       // depth head: this step's token is the block's next slot (or its END)
  std::vector<int64_t> codes;   // depth head: the codes of every slot emitted, in order
};

std::vector<std::vector<int64_t>> VimModel::decode_constrained(const std::vector<std::vector<int64_t>>& prompts,
                                                               const std::vector<std::vector<int64_t>>& uncond_prompts,
                                                               const std::vector<torch::Tensor>& prompt_extra,
                                                               std::vector<DecodeConstraint>& cons, int64_t max_new,
                                                               const GenerateSettings& s) {
  const auto& v = p_->vocab;
  const int64_t V = p_->lm->config().vocab_size, Q = p_->spec.layers, K = p_->spec.codebook_size;
  const bool depth = p_->spec.depth_head();
  const int64_t per_slot = depth ? 1 : Q;  // sequence positions per (step, person) slot
  VIMO_CHECK(s.min_motion_steps >= 0 && s.min_motion_steps <= s.max_motion_steps,
             "min_motion_steps (" + std::to_string(s.min_motion_steps) + ") must be in 0..max_motion_steps (" +
                 std::to_string(s.max_motion_steps) + ")");
  const int end_id = v.special(v.chat_format() == "llama3" ? "<|eot_id|>" : "<|end|>");
  for (const auto& ids : prompts)
    VIMO_CHECK(static_cast<int64_t>(ids.size()) + max_new <= p_->lm->config().max_position_embeddings,
               "prompt of " + std::to_string(ids.size()) + " tokens plus " + std::to_string(max_new) +
                   " new ones exceeds the LM's context of " + std::to_string(p_->lm->config().max_position_embeddings));
  // Allowed-id masks: text ids (not special) plus the end token, and each quantizer level's ids.
  auto text_ok = torch::zeros({V}, torch::kBool);
  {
    auto a = text_ok.accessor<bool, 1>();
    for (int i = 0; i < v.text_size(); ++i) a[i] = v.info(i).kind == text::TokenKind::kText && !p_->text->is_special(i);
    a[end_id] = true;
  }
  auto free_ok = text_ok.clone();
  int open_ids[3], close_ids[3];
  for (int k = 0; k < 3; ++k) {
    open_ids[k] = v.special(open_name(kKinds[k]));
    close_ids[k] = v.special(close_name(kKinds[k]));
    free_ok[open_ids[k]] = true;
  }
  std::vector<torch::Tensor> level_ok;
  for (int64_t q = 0; q < Q; ++q) {
    auto m = torch::zeros({V}, torch::kBool);
    m.narrow(0, v.motion_base() + q * K, K).fill_(true);
    level_ok.push_back(m);
  }
  const float ninf = -std::numeric_limits<float>::infinity();
  lm::GenerateOptions o;
  o.max_new_tokens = max_new;
  o.greedy = s.greedy;
  o.temperature = s.temperature;
  o.top_k = s.top_k;
  o.top_p = s.top_p;
  o.seed = s.seed;
  o.guidance = s.guidance;
  o.uncond_prompts = uncond_prompts;
  o.stop_tokens = {end_id};
  o.pad_token = v.special("<pad>");
  o.processor = [&](torch::Tensor& logits, const std::vector<std::vector<int64_t>>& seen, int64_t step) {
    for (size_t b = 0; b < cons.size(); ++b) {
      auto& c = cons[b];
      if (!c.motion && s.repetition_penalty != 1.0) {
        auto row = logits.narrow(0, static_cast<int64_t>(b), 1);
        lm::apply_repetition_penalty(row, {seen[b]}, s.repetition_penalty);
      }
      if (step > 0) {
        const int64_t last = seen[b].back();
        if (c.motion && !c.closed) {
          if (last == c.close_id) {
            c.closed = true;
            if (c.free) c.motion = false, c.closed = false;
          } else {
            ++c.slots;
          }
        } else if (c.free) {
          for (int k = 0; k < 3; ++k)
            if (last == open_ids[k]) c.motion = true, c.slots = 0, c.persons = k == 0 ? 2 : 1, c.close_id = close_ids[k];
        }
      }
      torch::Tensor ok;
      c.depth_now = false;
      if (!c.motion || c.closed) {
        ok = c.free ? free_ok
             : c.motion ? torch::zeros({V}, torch::kBool).index_fill_(0, torch::tensor({int64_t{end_id}}), true)
                        : text_ok;
      } else {
        const int64_t frame = c.persons * per_slot;
        if (c.slots >= s.max_motion_steps * frame) {
          ok = torch::zeros({V}, torch::kBool);
          ok[c.close_id] = true;
        } else {
          c.depth_now = depth;  // the depth head replaces whatever the LM samples here
          ok = level_ok[c.slots % per_slot];
          if (c.slots > 0 && c.slots % frame == 0 && c.slots >= s.min_motion_steps * frame) {
            ok = ok.clone();
            ok[c.close_id] = true;
          }
        }
      }
      logits[static_cast<int64_t>(b)].masked_fill_(ok.logical_not().to(logits.device()), ninf);
    }
  };
  if (depth) {
    VIMO_CHECK(p_->lm->depth_head(), "the run's lm/vim.json names a depth head but its LM has none");
    lm::DepthHead head(p_->lm->depth_head());
    o.extra_width = Q - 1;
    o.prompt_extra = prompt_extra;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(s.seed ^ 0x4445505448ull);  // "DEPTH"
    o.slot_hook = [&, head, gen](const torch::Tensor& h, torch::Tensor& next, torch::Tensor& extra, int64_t) mutable {
      std::vector<int64_t> rows;
      std::vector<uint8_t> end_ok;
      for (size_t b = 0; b < cons.size(); ++b)
        if (cons[b].depth_now) {
          rows.push_back(static_cast<int64_t>(b));
          end_ok.push_back(cons[b].slots > 0 && cons[b].slots % cons[b].persons == 0 &&
                           cons[b].slots >= s.min_motion_steps * cons[b].persons);
        }
      if (rows.empty()) return;
      const int64_t n = static_cast<int64_t>(rows.size());
      auto hr = h.index_select(0, torch::tensor(rows, torch::kLong).to(h.device()));
      auto mask_end = torch::tensor(std::vector<int64_t>(end_ok.begin(), end_ok.end()), torch::kLong).eq(0).to(h.device());
      auto p = head->sample_slot(hr, [&](int64_t q, const torch::Tensor& logits) {
                      auto lg = logits.to(torch::kFloat32);  // [n, K (+1 at level 0)]
                      if (q == 0) lg.select(1, K).masked_fill_(mask_end.to(lg.device()), -std::numeric_limits<float>::infinity());
                      return lm::sample_next(lg, o, gen);
                    }).to(torch::kCPU);
      auto pa = p.accessor<int64_t, 2>();
      auto na = next.accessor<int64_t, 1>();
      // One level (Q = 1) has no extra ids: lm::generate leaves `extra` undefined then.
      auto ea_t = extra.defined() ? extra : torch::zeros({next.size(0), 0}, torch::kLong);
      auto ea = ea_t.accessor<int64_t, 2>();
      for (int64_t i = 0; i < n; ++i) {
        auto& c = cons[static_cast<size_t>(rows[i])];
        if (pa[i][0] == K) {
          na[rows[i]] = c.close_id;
          continue;
        }
        na[rows[i]] = v.motion_id(0, static_cast<int>(pa[i][0]));
        for (int64_t q = 0; q < Q; ++q) c.codes.push_back(pa[i][q]);
        for (int64_t q = 1; q < Q; ++q) ea[rows[i]][q - 1] = v.motion_id(static_cast<int>(q), static_cast<int>(pa[i][q]));
      }
    };
  }
  return lm::generate(p_->lm, prompts, o);
}

std::vector<Result> VimModel::generate(const std::vector<Request>& reqs, const GenerateSettings& s) {
  VIMO_CHECK(!reqs.empty(), "generate: no requests");
  const auto& v = p_->vocab;
  const int64_t V = p_->lm->config().vocab_size, Q = p_->spec.layers, K = p_->spec.codebook_size;
  VIMO_CHECK(v.size() == V, "vocabulary (" + std::to_string(v.size()) + ") and LM (" + std::to_string(V) + ") differ in size");
  const int end_id = v.special(v.chat_format() == "llama3" ? "<|eot_id|>" : "<|end|>");
  std::vector<std::vector<int64_t>> prompts, uncond;
  std::vector<torch::Tensor> extras;
  std::vector<DecodeConstraint> cons;
  int64_t max_new = 1;
  const bool guided = s.guidance != 1.0;
  for (const auto& r : reqs) {
    check_task(r.task);
    const bool reaction = r.task == Task::kA2B || r.task == Task::kB2A;
    const bool with_caption = reaction && !r.caption.empty() && p_->templates.has(r.task, true);
    torch::Tensor codes = r.codes.defined() ? r.codes : torch::zeros({0, 2, Q}, torch::kLong);
    if (!task_needs_caption(r.task) || reaction) {
      VIMO_CHECK(r.codes.defined() && r.codes.size(0) > 0, "task " + task_name(r.task) + " needs an input motion");
      VIMO_CHECK(codes.dim() == 3 && codes.size(2) >= Q && codes.min().item<int64_t>() >= 0 && codes.max().item<int64_t>() < K,
                 "input motion codes must be [T', 2, >=" + std::to_string(Q) + "] in 0.." + std::to_string(K - 1) +
                     ", got " + c10::str(codes.sizes()));
    }
    auto conv = build_prompt(p_->templates, r.task, r.tmpl, r.caption, codes, Q, with_caption);
    auto flat = p_->chat.render(conv, /*generation_prompt=*/true).ids;
    DecodeConstraint c;
    const auto kind = response_motion(r.task);
    if (kind) {
      flat.push_back(v.special(open_name(*kind)));
      c.motion = true;
      c.persons = *kind == text::Segment::Kind::kMotion ? 2 : 1;
      c.close_id = v.special(close_name(*kind));
      max_new = std::max(max_new, s.max_motion_steps * c.persons * (p_->spec.depth_head() ? 1 : Q) + 2);
    } else {
      max_new = std::max(max_new, s.max_new + 1);
    }
    auto [ids, extra] = lm_input(flat);
    prompts.push_back(std::move(ids));
    extras.push_back(extra);
    cons.push_back(c);
    // Classifier-free guidance: the same phrasing without the caption is the unconditional prompt.
    uncond.emplace_back();
    if (guided && task_from_caption(r.task)) {
      check_guidance();
      auto u = p_->chat.render(build_prompt(p_->templates, r.task, r.tmpl, "", codes, Q, false), true).ids;
      u.push_back(v.special(open_name(*kind)));
      uncond.back() = lm_input(u).first;
    }
  }
  auto out = decode_constrained(prompts, uncond, extras, cons, max_new, s);
  std::vector<Result> res;
  for (size_t b = 0; b < reqs.size(); ++b) {
    Result r;
    r.task = reqs[b].task;
    r.ids = out[b];
    if (cons[b].motion) {
      std::vector<int64_t> codes;
      if (p_->spec.depth_head()) {
        codes = cons[b].codes;
      } else {
        for (int64_t id : out[b]) {
          const auto info = v.info(static_cast<int>(id));
          if (info.kind != text::TokenKind::kMotion) break;
          codes.push_back(info.k);
        }
      }
      const int64_t frame = cons[b].persons * Q, T = static_cast<int64_t>(codes.size()) / frame;
      r.codes = torch::tensor(codes, torch::kLong).narrow(0, 0, T * frame).reshape({T, cons[b].persons, Q});
    } else {
      std::vector<int> t;
      for (int64_t id : out[b]) {
        if (id == end_id) break;
        t.push_back(static_cast<int>(id));
      }
      r.text = p_->text->decode(t, /*skip_special=*/true);
    }
    res.push_back(std::move(r));
  }
  return res;
}

std::vector<text::Turn> VimModel::respond(const std::vector<text::Conversation>& convs, const GenerateSettings& s) {
  VIMO_CHECK(!convs.empty(), "respond: no conversations");
  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::vector<int>> flat;
  std::vector<torch::Tensor> extras;
  std::vector<DecodeConstraint> cons;
  for (const auto& c : convs) {
    VIMO_CHECK(!c.empty() && c.back().role == text::Role::kUser, "respond: a conversation must end with a user turn");
    flat.push_back(p_->chat.render(c, /*generation_prompt=*/true).ids);
    auto [ids, extra] = lm_input(flat.back());
    prompts.push_back(std::move(ids));
    extras.push_back(extra);
    DecodeConstraint k;
    k.free = true;
    cons.push_back(k);
  }
  const bool depth = p_->spec.depth_head();
  const int64_t Q = p_->spec.layers;
  const int64_t max_new = s.max_new + s.max_motion_steps * 2 * (depth ? 1 : Q) + 2;
  auto out = decode_constrained(prompts, {}, extras, cons, max_new, s);
  std::vector<text::Turn> turns;
  for (size_t b = 0; b < convs.size(); ++b) {
    std::vector<int> ids = flat[b];
    size_t slot = 0;  // depth: each generated slot's level-0 id becomes its Q ids again
    for (int64_t id : out[b]) {
      if (depth && p_->vocab.info(static_cast<int>(id)).kind == text::TokenKind::kMotion) {
        for (int64_t q = 0; q < Q; ++q)
          ids.push_back(p_->vocab.motion_id(static_cast<int>(q), static_cast<int>(cons[b].codes[slot * Q + q])));
        ++slot;
        continue;
      }
      ids.push_back(static_cast<int>(id));
    }
    auto parsed = p_->chat.parse(ids);
    VIMO_CHECK(!parsed.empty() && parsed.back().role == text::Role::kAssistant, "respond: the model's answer could not be parsed");
    turns.push_back(parsed.back());
  }
  return turns;
}

}  // namespace vimo::vim

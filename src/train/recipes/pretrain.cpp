// Stage-2 recipe: the unified vocabulary over a base (or a text tokenizer trained on the captions),
// the LM with LoRA / new rows, the task mixture batches, and training through train::Trainer.
#include "vimo/train/recipes/pretrain.h"

#include <filesystem>
#include <set>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/process_group.h"
#include "vimo/data/token_cache.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/loss.h"
#include "vimo/text/sentencepiece.h"
#include "vimo/train/recipes/pretrain_task.h"
#include "vimo/train/setup.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::train {
namespace {

// The text tokenizer file of an HF base directory.
std::string base_text_tokenizer(const std::string& base) {
  for (const char* n : {"tokenizer.json", "tokenizer.model"})
    if (fs::exists(fs::path(base) / n)) return (fs::path(base) / n).string();
  throw Error("base directory '" + base + "' has no tokenizer.json or tokenizer.model; copy the model's tokenizer "
              "next to its config.json");
}

// An HF base directory: config.json, a text tokenizer, and every weight file its index names.
void check_base(const std::string& base) {
  const fs::path d(base);
  VIMO_CHECK(fs::is_directory(d), "model.base='" + base + "' is neither scratch nor a directory");
  VIMO_CHECK(fs::exists(d / "config.json"), "model.base='" + base + "' has no config.json (expected a Hugging Face Llama directory)");
  base_text_tokenizer(base);
  const auto index = d / "model.safetensors.index.json";
  if (fs::exists(index)) {
    json j;
    try {
      j = json::parse(core::read_file(index.string()));
    } catch (const json::exception& e) {
      throw Error("'" + index.string() + "' is not valid JSON: " + e.what());
    }
    VIMO_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), "'" + index.string() + "' has no weight_map");
    std::set<std::string> shards;
    for (const auto& [name, f] : j["weight_map"].items())
      if (f.is_string()) shards.insert(f.get<std::string>());
    for (const auto& f : shards)
      VIMO_CHECK(fs::exists(d / f), "model.base='" + base + "': shard '" + f + "' named by model.safetensors.index.json is missing");
  } else {
    VIMO_CHECK(fs::exists(d / "model.safetensors"), "model.base='" + base +
                                                         "' has neither model.safetensors nor model.safetensors.index.json");
  }
}

// Scratch: a SentencePiece model trained on the train split's captions (reused when already there).
std::string train_text_tokenizer(const PretrainConfig& c, const data::TokenCache& train, const fs::path& lm_dir) {
  const fs::path out = lm_dir / "text.model";
  if (fs::exists(out)) return out.string();
  std::vector<std::string> lines;
  for (int64_t i = 0; i < train.size(); ++i)
    for (const auto& cap : train.clip(i).captions) lines.push_back(cap);
  VIMO_CHECK(!lines.empty(), "token cache '" + train.path() + "' holds no captions to train the text tokenizer on");
  text::SentencePieceTrainOptions o;
  o.out = out.string();
  o.vocab_size = static_cast<int>(c.model.text_vocab_size);
  o.model_type = c.model.text_model;
  o.threads = std::max(1, c.run.threads);
  o.byte_fallback = true;
  log::info("pretrain: training a ", c.model.text_model, " text tokenizer (", o.vocab_size, " pieces) on ", lines.size(),
            " captions");
  text::train_sentencepiece_on(lines, o);
  return out.string();
}

// The run's lm/ description must agree with the config when the run already has checkpoints.
void check_same_spec(const vim::ModelSpec& a, const vim::ModelSpec& b, const std::string& run) {
  auto same = a.to_json();
  auto other = b.to_json();
  same.erase("tasks"), other.erase("tasks");
  VIMO_CHECK(same == other, "run '" + run + "' was made with a different model (lm/vim.json: " + other.dump() +
                                "; this config: " + same.dump() + "); use the run's settings or start over with "
                                "run.resume=false and a new run.dir");
}

}  // namespace

int train_pretrain(const PretrainConfig& c, const std::string& yaml) {
  VIMO_CHECK(!c.data.tokens.empty(), "data.tokens is not set: make a token cache with `vimo tokenizer encode --run TOK "
                                     "--data packed/DIR --out tokens/DIR` and pass data.tokens=tokens/DIR");
  VIMO_CHECK(!c.model.tokenizer.empty(), "model.tokenizer is not set: name the stage-1 run (model.tokenizer=runs/tok-demo)");
  // Every input is checked before the run directory is made: a failed start leaves nothing behind.
  const fs::path tokens(c.data.tokens), lm_dir = fs::path(c.run.dir) / "lm";
  VIMO_CHECK(fs::exists(tokens / "train.h5"), "token cache '" + (tokens / "train.h5").string() +
                                                  "' does not exist; make it with `vimo tokenizer encode --run " +
                                                  c.model.tokenizer + " --data packed/DIR --out " + c.data.tokens + "`");
  VIMO_CHECK(fs::is_directory(c.model.tokenizer), "model.tokenizer='" + c.model.tokenizer +
                                                      "' is not a directory; name a stage-1 run made by `vimo tokenizer train`");
  auto motion = std::make_shared<tokenizer::MotionTokenizer>(tokenizer::MotionTokenizer::load(c.model.tokenizer));
  const auto& mo = motion->options();
  auto train = std::make_shared<data::TokenCache>(data::TokenCache::open((tokens / "train.h5").string()));
  train->check_layout(mo.codebook_size, mo.num_quantizers, "tokenizer run '" + c.model.tokenizer + "'");
  std::shared_ptr<data::TokenCache> val;
  if (fs::exists(tokens / "val.h5")) {
    val = std::make_shared<data::TokenCache>(data::TokenCache::open((tokens / "val.h5").string()));
    val->check_layout(mo.codebook_size, mo.num_quantizers, "tokenizer run '" + c.model.tokenizer + "'");
  }
  const int64_t layers = c.model.motion_layers > 0 ? c.model.motion_layers : mo.num_quantizers;
  VIMO_CHECK(layers <= mo.num_quantizers, "model.motion_layers=" + std::to_string(layers) + " but the tokenizer run has Q=" +
                                              std::to_string(mo.num_quantizers) + " levels");
  if (!c.model.scratch()) check_base(c.model.base);

  const auto dev = setup_run(c.run, c.dist, yaml);
  if (!val) log::warn("no val split in '", c.data.tokens, "': training without validation");
  if (!dev.is_cpu())
    motion = std::make_shared<tokenizer::MotionTokenizer>(tokenizer::MotionTokenizer::load(c.model.tokenizer, dev));
  auto& pg = core::process_group();  // rank 0 writes the run's files, the other ranks read them
  fs::create_directories(lm_dir);

  // Text tokenizer and unified vocabulary.
  const bool scratch = c.model.scratch();
  const std::string text_src = !scratch ? base_text_tokenizer(c.model.base)
                               : pg.is_main() ? train_text_tokenizer(c, *train, lm_dir) : std::string();
  const std::string text_file = scratch ? "text.model" : fs::path(text_src).filename().string();
  if (!scratch && pg.is_main()) fs::copy_file(text_src, lm_dir / text_file, fs::copy_options::overwrite_existing);
  pg.barrier();
  std::shared_ptr<text::TextTokenizer> text = text::load_text_tokenizer((lm_dir / text_file).string());
  lm::LlamaConfig base_cfg;
  if (!scratch) {
    VIMO_CHECK(fs::exists(fs::path(c.model.base) / "config.json"), "model.base='" + c.model.base +
                                                                       "' is neither scratch nor an HF directory with config.json");
    base_cfg = lm::LlamaConfig::load((fs::path(c.model.base) / "config.json").string());
  }
  auto vocab = text::UnifiedVocab::build(*text, {static_cast<int>(mo.codebook_size), static_cast<int>(layers)},
                                         scratch ? 0 : static_cast<int>(base_cfg.vocab_size));
  const int end_id = vocab.special(vocab.chat_format() == "llama3" ? "<|eot_id|>" : "<|end|>");

  vim::ModelSpec spec;
  spec.stage = "pretrain";
  spec.base = scratch ? "scratch" : fs::absolute(c.model.base).lexically_normal().string();
  spec.base_vocab = scratch ? 0 : base_cfg.vocab_size;
  spec.tokenizer_run = fs::absolute(c.model.tokenizer).lexically_normal().string();
  spec.codebook_size = mo.codebook_size;
  spec.layers = layers;
  spec.tokenizer_quantizers = mo.num_quantizers;
  spec.downsample = mo.downsample();
  spec.text_file = text_file;
  spec.motion_head = c.model.motion_head;
  spec.depth = {0, c.model.depth_width, c.model.depth_layers, c.model.depth_heads, c.model.depth_ffn, layers, mo.codebook_size};
  if (spec.depth_head()) {
    spec.depth.hidden = 1;  // the LM's, filled when the head is attached
    spec.depth.check("model.depth_*");
  }
  if (c.lora.enabled) {
    VIMO_CHECK(!scratch, "lora.enabled=true needs a pretrained model.base; a model from scratch is trained whole");
    spec.lora = lm::lora_options(c.lora, static_cast<uint64_t>(c.run.seed) + 2);
  }
  auto templates = vim::Templates::load_or_builtin(c.data.templates);
  spec.tasks = vim::SampleStream(*train, templates, task_mix(c), c.run.seed).tasks();
  spec.caption_dropout = c.data.caption_dropout;

  // The model.
  const auto dtype = c.model.dtype == "auto" ? (dev.is_cuda() && !scratch ? torch::kBFloat16 : torch::kFloat32)
                                             : lm::dtype_from_name(c.model.dtype, "model.dtype");
  lm::LlamaConfig cfg;
  if (scratch) {
    cfg = c.model.arch.to_llama(vocab.size(), "float32");
    if (text->bos_id()) cfg.bos_token_id = *text->bos_id();
  } else {
    cfg = base_cfg;
    cfg.vocab_size = vocab.size();
    cfg.torch_dtype = lm::dtype_name(dtype);
  }
  cfg.eos_token_id = {end_id};
  cfg.pad_token_id = vocab.special("<pad>");
  lm::LlamaForCausalLM m{nullptr};
  if (scratch) {
    m = lm::build_random(cfg, c.model.arch.init_std, static_cast<uint64_t>(c.run.seed), dev);
    vim::attach_depth_head(m, spec, static_cast<uint64_t>(c.run.seed) + 3);
  } else {
    m = vim::build_lm(spec, cfg, dev, dtype, static_cast<uint64_t>(c.run.seed) + 1);
    m->mutable_config().eos_token_id = cfg.eos_token_id;
    m->mutable_config().pad_token_id = cfg.pad_token_id;
  }
  m->set_checkpointing(c.model.activation_checkpointing);

  // lm/: what later commands need to rebuild this model.
  core::CheckpointManager cm(c.run.dir, 0);
  const fs::path spec_path = lm_dir / "vim.json";
  if (c.run.resume && cm.latest() && fs::exists(spec_path))
    check_same_spec(spec, vim::ModelSpec::from_json(json::parse(core::read_file(spec_path.string())), spec_path.string()),
                    c.run.dir);
  if (pg.is_main()) {
    core::write_file_atomic((lm_dir / "config.json").string(), m->config().to_json().dump(2) + "\n");
    vocab.save((lm_dir / "vocab.json").string());
    core::write_file_atomic((lm_dir / "templates.yaml").string(), templates.yaml());
    core::write_file_atomic(spec_path.string(), spec.to_json().dump(2) + "\n");
  }
  int64_t trainable = 0;
  for (const auto& [n, t] : vim::trainable_tensors(m)) trainable += t.numel();
  log::info("pretrain: ", scratch ? "from scratch" : "base " + c.model.base, ", vocabulary ", vocab.size(), " (text ",
            vocab.text_size(), ", motion ", mo.codebook_size, " x ", layers, " from ", vocab.motion_base(),
            spec.depth_head() ? ", depth head" : ", flat", "), ",
            m->config().num_parameters(), " parameters, ", trainable, " trainable, device ", dev.str());

  vim::VimModel model(m, std::move(vocab), text, spec, templates);
  model.set_motion_tokenizer(motion);
  PretrainTask task(c, model, train, val);
  Trainer trainer(trainer_options(c.run, c.train, c.optim.o, c.dist, dev, "pretrain"), task);
  const int rc = trainer.fit();
  if (rc != kExitOk) return rc;
  if (pg.is_main()) export_run(c.run.dir);  // merged/ and the PEFT export: rank 0's job
  return kExitOk;
}

}  // namespace vimo::train

// Stage-3 recipe (instruct.h): the stage-2 model of model.init (whole for a model trained from scratch,
// a new LoRA over its merged weights for a pretrained base), conversation batches, train::Trainer.
#include "vimo/train/recipes/instruct.h"

#include <filesystem>
#include <random>

#include "vimo/core/checkpoint.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/process_group.h"
#include "vimo/core/rng.h"
#include "vimo/lm/hf.h"
#include "vimo/text/vocab.h"
#include "vimo/train/recipes/pretrain_task.h"
#include "vimo/train/setup.h"
#include "vimo/vim/dialogue.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vimo::train {
namespace {

constexpr uint64_t kMixStream = 0x494E5354ull;  // "INST"
constexpr uint64_t kValStream = 0x56414C43ull;  // "VALC"

std::shared_ptr<data::TokenCache> open_cache(const fs::path& p, const vim::ModelSpec& spec, const std::string& init) {
  auto c = std::make_shared<data::TokenCache>(data::TokenCache::open(p.string()));
  c->check_layout(spec.codebook_size, spec.tokenizer_quantizers, "the tokenizer of stage-2 run '" + init + "'");
  return c;
}

std::vector<data::ConversationRecord> read_split(const fs::path& file, const data::TokenCache& cache) {
  return data::read_conversations(file.string(), [&cache](const std::string& id) { return cache.find(id).has_value(); });
}

class InstructTask : public Task {
 public:
  InstructTask(const InstructConfig& c, vim::VimModel model, std::unique_ptr<InstructSamples> train,
               std::unique_ptr<InstructSamples> val)
      : c_(c), model_(std::move(model)), train_(std::move(train)), val_(std::move(val)) {
    vim::BatchOptions bo;
    bo.batch_size = c_.data.batch_size;
    bo.max_length = c_.data.max_length;
    bo.pack = c_.data.pack;
    bo.layers = model_.spec().layers;
    bo.shard_rank = core::process_group().rank();
    bo.shard_count = core::process_group().world_size();
    batches_ = std::make_unique<vim::BatchStream>([this](int64_t n) { return (*train_)(n); },
                                                  model_.vocab().special("<pad>"), bo, c_.run.seed);
    // Fixed validation conversations spread over the val split.
    if (val_ && c_.data.val_conversations > 0) {
      const size_t n = std::min<size_t>(static_cast<size_t>(c_.data.val_conversations), val_->size());
      for (size_t k = 0; k < n; ++k)
        if (auto f = val_->conversation(k * val_->size() / n)) val_seqs_.push_back(f->seq);
    }
    int64_t unfit = 0;
    for (size_t i = 0; i < train_->size(); ++i) unfit += train_->conversation(i) ? 0 : 1;
    if (unfit > 0)
      log::warn("instruct: ", unfit, " of ", train_->size(), " train conversations do not fit data.max_length=", c_.data.max_length,
                " even with only their last exchange and will be skipped; raise data.max_length");
  }
  torch::nn::Module& module() override { return *model_.lm(); }
  StepOutput forward(int64_t) override {
    auto out = lm_step(model_, batches_->next());
    out.logs["dropped_turns"] = torch::tensor(static_cast<double>(train_->dropped_turns()), torch::kFloat64);
    return out;
  }
  std::map<std::string, double> validate() override {
    if (val_seqs_.empty()) return {};
    return score_sequences(model_, val_seqs_, c_.data.batch_size);
  }
  bool validates_on_every_rank() const override { return true; }  // score_sequences sums over ranks
  core::NamedTensors weights() override { return vim::trainable_tensors(model_.lm()); }
  void load_weights(const std::string& path) override { vim::load_trainable_tensors(model_.lm(), path); }
  std::map<std::string, std::string> weights_metadata() override {
    return {{"format", "vimo-lm"}, {"stage", "instruct"}, {"base", model_.spec().base}, {"init", c_.model.init},
            {"vocab_size", std::to_string(model_.lm()->config().vocab_size)}};
  }
  json data_state() const override {
    return {{"batches", batches_->state()}, {"dropped_turns", train_->dropped_turns()}, {"counted_until", train_->counted_until()}};
  }
  void load_data_state(const json& s) override {
    VIMO_CHECK(s.is_object() && s.contains("batches"), "instruct: the checkpoint's data state " + s.dump() +
                                                           " is not a stage-3 state; start over with run.resume=false");
    batches_->load_state(s["batches"]);
    train_->set_dropped_turns(s.value("dropped_turns", int64_t{0}), s.value("counted_until", int64_t{0}));
  }

 private:
  InstructConfig c_;
  vim::VimModel model_;
  std::unique_ptr<InstructSamples> train_, val_;
  std::unique_ptr<vim::BatchStream> batches_;
  std::vector<data::TokenSeq> val_seqs_;
};

}  // namespace

InstructSamples::InstructSamples(vim::VimModel& model, std::vector<data::ConversationRecord> conversations,
                                 std::shared_ptr<data::TokenCache> tokens, std::shared_ptr<data::TokenCache> pretrain,
                                 std::vector<vim::Task> pretrain_tasks, double pretrain_ratio, std::string system,
                                 int64_t max_length, int64_t seed)
    : model_(model), convs_(std::move(conversations)), tokens_(std::move(tokens)), pretrain_(std::move(pretrain)),
      ratio_(pretrain_ratio), system_(std::move(system)), max_length_(max_length), seed_(seed) {
  VIMO_CHECK(!convs_.empty(), "instruct: no conversations to train on");
  if (pretrain_ && ratio_ > 0) {
    vim::TaskMix mix;
    mix.tasks = std::move(pretrain_tasks);
    mix.weights.assign(mix.tasks.size(), 1.0);
    for (auto t : mix.tasks) model_.check_task(t);
    stage2_ = std::make_unique<vim::SampleStream>(*pretrain_, model_.templates(), mix, seed_);
  }
}

std::optional<vim::FittedDialogue> InstructSamples::conversation(size_t i) const {
  const auto& r = convs_.at(i);
  auto lookup = [this](const std::string& id) -> std::optional<data::TokenClip> {
    auto k = tokens_->find(id);
    if (!k) return std::nullopt;
    return tokens_->clip(*k);
  };
  auto conv = vim::build_dialogue(r, lookup, model_.spec().layers);
  if (!system_.empty()) conv.insert(conv.begin(), text::Turn{text::Role::kSystem, {{text::Segment::Kind::kText, system_, {}}}});
  return vim::fit_dialogue(model_.chat(), std::move(conv), max_length_, vim::conversation_tag(r.task), model_.spec().depth_head());
}

vim::SourceItem InstructSamples::operator()(int64_t n) {
  std::mt19937_64 rng(core::derive_seed(seed_, kMixStream, n));
  if (stage2_ && core::uniform01(rng) < ratio_) {
    const vim::Sample s = stage2_->draw(n);
    const auto clip = pretrain_->clip(s.clip);
    return {vim::render_sequence(model_.chat(), vim::build_conversation(model_.templates(), s, clip, model_.spec().layers),
                                 static_cast<int64_t>(s.task), model_.spec().depth_head()),
            "stage-2 " + vim::task_name(s.task) + ", clip " + clip.id};
  }
  const size_t i = static_cast<size_t>(core::below(rng, convs_.size()));
  auto f = conversation(i);
  if (f && n >= counted_until_) {  // a sample rendered again (the one opening the next packed batch) counts once
    dropped_ += f->dropped_turns;
    counted_until_ = n + 1;
  }
  return {f ? std::optional<data::TokenSeq>(std::move(f->seq)) : std::nullopt, "conversation " + convs_[i].id};
}

int train_instruct(const InstructConfig& c, const std::string& yaml) {
  VIMO_CHECK(!c.model.init.empty(), "model.init is not set: name the stage-2 run to start from (model.init=runs/pretrain-demo)");
  const fs::path init(c.model.init), conv(c.data.conversations), tokens(c.data.tokens), lm_dir = fs::path(c.run.dir) / "lm";
  const fs::path init_spec = init / "lm" / "vim.json";
  VIMO_CHECK(fs::exists(init_spec), "model.init='" + c.model.init + "' is not a stage-2 run (no lm/vim.json); train one with "
                                    "`vimo pretrain` first");
  VIMO_CHECK(!c.data.conversations.empty(), "data.conversations is not set: make conversations with `vimo data conversations "
                                            "--synthetic DIR --out DIR` and pass data.conversations=DIR");
  VIMO_CHECK(fs::exists(conv / "train.jsonl"), "data.conversations='" + c.data.conversations + "' has no train.jsonl");
  VIMO_CHECK(fs::exists(tokens / "train.h5"), "token cache '" + (tokens / "train.h5").string() + "' does not exist; pack the "
             "conversation clips and encode them with `vimo tokenizer encode --run TOK --data packed/DIR --out " + c.data.tokens + "`");
  const bool mix = c.data.pretrain_ratio > 0 && !c.data.pretrain_tokens.empty();
  if (mix)
    VIMO_CHECK(fs::exists(fs::path(c.data.pretrain_tokens) / "train.h5"),
               "data.pretrain_tokens='" + c.data.pretrain_tokens + "' has no train.h5 (the stage-2 token cache); set "
               "data.pretrain_ratio=0 to train on conversations alone");
  json sj;
  try {
    sj = json::parse(core::read_file(init_spec.string()));
  } catch (const json::exception& e) {
    throw Error("'" + init_spec.string() + "' is not valid JSON: " + e.what());
  }
  vim::ModelSpec spec = vim::ModelSpec::from_json(sj, "'" + init_spec.string() + "'");
  auto train_cache = open_cache(tokens / "train.h5", spec, c.model.init);
  auto train_convs = read_split(conv / "train.jsonl", *train_cache);
  std::shared_ptr<data::TokenCache> val_cache;
  std::vector<data::ConversationRecord> val_convs;
  if (fs::exists(conv / "val.jsonl") && fs::exists(tokens / "val.h5")) {
    val_cache = open_cache(tokens / "val.h5", spec, c.model.init);
    val_convs = read_split(conv / "val.jsonl", *val_cache);
  }
  std::shared_ptr<data::TokenCache> pre_cache = mix ? open_cache(fs::path(c.data.pretrain_tokens) / "train.h5", spec, c.model.init) : nullptr;
  std::vector<vim::Task> pre_tasks;
  for (const auto& t : c.data.pretrain_tasks) pre_tasks.push_back(vim::parse_task(t, "data.pretrain_tasks"));
  const bool scratch = spec.base == "scratch";
  if (scratch)
    VIMO_CHECK(!c.lora.enabled, "model.init='" + c.model.init + "' was trained from scratch: stage 3 fine-tunes it whole; set "
                                "lora.enabled=false");
  else
    VIMO_CHECK(c.lora.enabled, "model.init='" + c.model.init + "' adapts a pretrained base: stage 3 trains a new LoRA over its "
                               "merged weights; set lora.enabled=true (full fine-tuning of a base is not built yet)");
  const fs::path merged = init / "merged";
  if (!scratch)
    VIMO_CHECK(fs::exists(merged / "config.json"), "stage-2 run '" + c.model.init + "' has no merged/ model; export it with "
                                                   "`vimo lm merge --run " + c.model.init + "`");

  const auto dev = setup_run(c.run, c.dist, yaml);
  if (val_convs.empty()) log::warn("instruct: no val.jsonl with a val token cache: training without validation");
  auto& pg = core::process_group();  // rank 0 writes the run's files, the other ranks read them
  fs::create_directories(lm_dir);
  const fs::path init_lm = init / "lm";
  if (pg.is_main())
    for (const std::string& f : std::vector<std::string>{"config.json", "vocab.json", "templates.yaml", spec.text_file})
      fs::copy_file(init_lm / f, lm_dir / f, fs::copy_options::overwrite_existing);
  pg.barrier();

  std::optional<vim::VimModel> model;
  if (scratch) {
    model.emplace(vim::VimModel::load_run(c.model.init, dev));
    model->lm()->train();
  } else {
    auto cfg = lm::LlamaConfig::load((init_lm / "config.json").string());
    spec.base = fs::absolute(merged).lexically_normal().string();
    spec.base_vocab = cfg.vocab_size;
    spec.lora = lm::lora_options(c.lora, static_cast<uint64_t>(c.run.seed) + 2);
    auto m = vim::build_lm(spec, cfg, dev, dev.is_cuda() ? torch::kBFloat16 : torch::kFloat32, static_cast<uint64_t>(c.run.seed) + 1);
    if (spec.depth_head()) vim::load_depth_head(m, (merged / "depth_head.safetensors").string());  // stage 2's, trained on
    auto vocab = text::UnifiedVocab::load((lm_dir / "vocab.json").string());
    std::shared_ptr<text::TextTokenizer> text = text::load_text_tokenizer((lm_dir / spec.text_file).string());
    model.emplace(m, std::move(vocab), text, spec, vim::Templates::load((lm_dir / "templates.yaml").string()));
  }
  model->lm()->set_checkpointing(c.model.activation_checkpointing);
  spec = model->spec();
  spec.stage = "instruct";
  const fs::path spec_path = lm_dir / "vim.json";
  core::CheckpointManager cm(c.run.dir, 0);
  if (c.run.resume && cm.latest() && fs::exists(spec_path)) {
    auto old = json::parse(core::read_file(spec_path.string()));
    VIMO_CHECK(old == spec.to_json(), "run '" + c.run.dir + "' was made from another model (lm/vim.json " + old.dump() +
                                          "); use the run's model.init or start over with a new run.dir");
  }
  if (pg.is_main()) {
    core::write_file_atomic(spec_path.string(), spec.to_json().dump(2) + "\n");
    core::write_file_atomic((lm_dir / "init.json").string(),
                            json{{"init", fs::absolute(init).lexically_normal().string()},
                                 {"checkpoint", vim::VimModel::run_checkpoint(c.model.init)}}.dump(2) + "\n");
  }

  auto train_samples = std::make_unique<InstructSamples>(*model, std::move(train_convs), train_cache, pre_cache, pre_tasks,
                                                         mix ? c.data.pretrain_ratio : 0.0, c.data.system, c.data.max_length,
                                                         c.run.seed);
  std::unique_ptr<InstructSamples> val_samples;
  if (!val_convs.empty())
    val_samples = std::make_unique<InstructSamples>(*model, std::move(val_convs), val_cache, nullptr, std::vector<vim::Task>{},
                                                    0.0, c.data.system, c.data.max_length, c.run.seed ^ static_cast<int64_t>(kValStream));
  int64_t trainable = 0;
  for (const auto& [n, t] : vim::trainable_tensors(model->lm())) trainable += t.numel();
  log::info("instruct: from ", c.model.init, scratch ? " (whole model)" : " (new LoRA over its merged weights)", ", ",
            train_samples->size(), " train conversations, ", val_samples ? val_samples->size() : 0, " val, ", trainable,
            " trainable parameters, stage-2 mix ", mix ? c.data.pretrain_ratio : 0.0, ", device ", dev.str());
  InstructTask task(c, *model, std::move(train_samples), std::move(val_samples));
  Trainer trainer(trainer_options(c.run, c.train, c.optim, c.dist, dev, "instruct"), task);
  const int rc = trainer.fit();
  if (rc != kExitOk) return rc;
  if (pg.is_main()) export_run(c.run.dir);  // merged/ and the PEFT export: rank 0's job
  return kExitOk;
}

}  // namespace vimo::train

// Stage 2: templates, loss masking, packing (= each sequence alone), constrained generation, token-
// normalized accumulation and exact resume of the pre-training task with packing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "data_test_util.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/run.h"
#include "vimo/lm/hf.h"
#include "vimo/lm/loss.h"
#include "vimo/text/sentencepiece.h"
#include "vimo/train/recipes/pretrain_task.h"
#include "vimo/vim/dialogue.h"

using namespace vimo;
namespace fs = std::filesystem;

namespace {

using data::testing::rm_rf;

using data::testing::error_message;

constexpr int64_t K = 16, Q = 2;

// The repository (ctest sets VIMO_SOURCE_DIR; a run from the build directory falls back to ..).
std::string source_dir() {
  const char* s = std::getenv("VIMO_SOURCE_DIR");
  return s ? s : "..";
}

// A tiny world: a token cache of random codes with captions, a SentencePiece model over them, the
// templates of the repository, and a random scratch LM over the unified vocabulary.
struct World {
  fs::path dir;
  std::shared_ptr<data::TokenCache> cache;
  std::shared_ptr<text::TextTokenizer> text;
  std::unique_ptr<vim::VimModel> model;
  train::PretrainConfig cfg;

  explicit World(const std::string& name, bool depth = false) {
    dir = fs::temp_directory_path() / ("vimo_pretrain_" + name + "_" + std::to_string(::getpid()));
    rm_rf(dir);
    fs::create_directories(dir);
    const std::vector<std::string> words = {"hug", "shake hands", "push", "wave", "bow", "dance"};
    data::TokenCacheContents c;
    c.info.codebook_size = K;
    c.info.num_quantizers = Q;
    torch::manual_seed(3);
    std::string corpus;
    for (int i = 0; i < 24; ++i) {
      data::TokenClip t;
      t.id = std::to_string(i + 1);
      t.codes = torch::randint(0, K, {4 + i % 5, 2, Q}, torch::kLong);
      t.frames = t.codes.size(0) * 4;
      t.persons = 2;
      t.captions = {"two people " + words[i % 6] + " slowly.", "the first person and the second " + words[i % 6] + "."};
      for (const auto& s : t.captions) corpus += s + "\n";
      c.clips.push_back(t);
    }
    data::write_token_cache((dir / "train.h5").string(), c);
    cache = std::make_shared<data::TokenCache>(data::TokenCache::open((dir / "train.h5").string()));
    core::write_file_atomic((dir / "corpus.txt").string(), corpus);
    text::SentencePieceTrainOptions so;
    so.input = (dir / "corpus.txt").string();
    so.out = (dir / "text.model").string();
    so.vocab_size = 320;  // 256 byte pieces (byte_fallback) + the corpus characters + merges
    so.model_type = "bpe";
    so.byte_fallback = true;
    so.threads = 1;
    text::train_sentencepiece(so);
    text = text::load_text_tokenizer(so.out);
    auto vocab = text::UnifiedVocab::build(*text, {static_cast<int>(K), static_cast<int>(Q)});
    cfg.data.templates = source_dir() + "/configs/templates/pretrain.yaml";
    cfg.data.tasks = {"t2m", "m2t", "a2b", "b2a"};
    cfg.data.task_weights = {1, 1, 0.5, 0.5};
    cfg.data.max_length = 96;
    cfg.data.batch_size = 3;
    cfg.data.val_generate = 0;
    cfg.run.dir = (dir / "run").string();
    cfg.run.seed = 5;
    auto templates = vim::Templates::load(cfg.data.templates);
    vim::ModelSpec spec;
    spec.codebook_size = K;
    spec.layers = Q;
    spec.tokenizer_quantizers = Q;
    spec.tasks = {vim::Task::kT2M, vim::Task::kM2T, vim::Task::kA2B, vim::Task::kB2A};
    if (depth) {
      spec.motion_head = "depth";
      spec.depth.width = 16;
      spec.depth.layers = 2;
      spec.depth.heads = 2;
      spec.depth.ffn = 24;
    }
    lm::LlamaArchSection a;
    a.hidden_size = 32;
    a.intermediate_size = 48;
    a.num_layers = 2;
    a.num_heads = 4;
    a.num_kv_heads = 2;
    a.max_position = 512;
    auto lmcfg = a.to_llama(vocab.size(), "float32");
    auto m = lm::build_random(lmcfg, 0.1, 11);
    vim::attach_depth_head(m, spec, 13);
    model = std::make_unique<vim::VimModel>(m, std::move(vocab), text, spec, std::move(templates));
  }
  ~World() { rm_rf(dir); }
};

}  // namespace

TEST(VimTemplates, BuiltinTemplatesAreTheShippedFileAndCoverEveryTask) {
  const std::string file = source_dir() + "/configs/templates/pretrain.yaml";
  const auto b = vim::Templates::builtin();
  EXPECT_EQ(b.yaml(), core::read_file(file));
  for (vim::Task t : {vim::Task::kT2M, vim::Task::kM2T, vim::Task::kA2B, vim::Task::kB2A, vim::Task::kT2MSingle, vim::Task::kM2TSingle}) {
    ASSERT_TRUE(b.has(t, false)) << vim::task_name(t);
    EXPECT_GE(b.get(t, false).size(), 12u) << vim::task_name(t);
  }
  EXPECT_TRUE(b.has(vim::Task::kA2B, true));
  EXPECT_EQ(vim::Templates::load_or_builtin("").yaml(), b.yaml());
  EXPECT_NE(error_message([] { vim::Templates::load_or_builtin("/nonexistent/t.yaml"); }).find("leave data.templates empty"),
            std::string::npos);
}

TEST(VimTemplates, RejectMissingAndForbiddenPlaceholdersWithTheLine) {
  World w("templates");
  const auto f = (w.dir / "t.yaml").string();
  core::write_file_atomic(f, "t2m:\n  - \"make {caption}\"\nm2t:\n  - \"describe it\"\n");
  auto e = error_message([&] { vim::Templates::load(f); });
  EXPECT_NE(e.find("line 4"), std::string::npos) << e;
  EXPECT_NE(e.find("lacks the placeholder {motion}"), std::string::npos) << e;
  core::write_file_atomic(f, "t2m:\n  - \"make {caption} like {motion}\"\n");
  e = error_message([&] { vim::Templates::load(f); });
  EXPECT_NE(e.find("holds {motion}"), std::string::npos) << e;
  core::write_file_atomic(f, "t2x:\n  - \"{caption}\"\n");
  EXPECT_NE(error_message([&] { vim::Templates::load(f); }).find("unknown template list 't2x'"), std::string::npos);
  // The repository's file: at least 12 phrasings of every list.
  for (vim::Task t : {vim::Task::kT2M, vim::Task::kM2T, vim::Task::kA2B, vim::Task::kB2A})
    EXPECT_GE(w.model->templates().get(t, false).size(), 12u) << vim::task_name(t);
  EXPECT_GE(w.model->templates().get(vim::Task::kA2B, true).size(), 12u);
}

TEST(VimTasks, LossOnlyOnTheResponseAndMotionLaidOutAsDesigned) {
  World w("mask");
  const auto clip = w.cache->clip(2);
  vim::Sample s{vim::Task::kT2M, 2, 0, 1, false};
  auto conv = vim::build_conversation(w.model->templates(), s, clip, Q);
  auto seq = vim::render_sequence(w.model->chat(), conv, 0);
  const auto& v = w.model->vocab();
  // The response is <motion> A(t0,q0) A(t0,q1) B(t0,q0) ... </motion> <|end|>; targets are the
  // ids that follow, on response positions only.
  const int open = v.special("<motion>");
  auto it = std::find(seq.ids.begin(), seq.ids.end(), open);
  ASSERT_NE(it, seq.ids.end());
  const size_t o = static_cast<size_t>(it - seq.ids.begin());
  for (size_t t = 0; t + 1 < seq.ids.size(); ++t) {
    if (t + 1 >= o) EXPECT_EQ(seq.targets[t], seq.ids[t + 1]) << t;
    else EXPECT_EQ(seq.targets[t], -100) << t;
  }
  EXPECT_EQ(seq.targets.back(), -100);
  EXPECT_EQ(seq.ids[o + 1], v.motion_id(0, static_cast<int>(clip.codes[0][0][0].item<int64_t>())));
  EXPECT_EQ(seq.ids[o + 3], v.motion_id(0, static_cast<int>(clip.codes[0][1][0].item<int64_t>())));
  EXPECT_EQ(seq.ids[o + 4], v.motion_id(1, static_cast<int>(clip.codes[0][1][1].item<int64_t>())));
  EXPECT_EQ(seq.ids.size() - o, static_cast<size_t>(clip.codes.size(0) * 2 * Q + 3));
}

TEST(VimPacking, APackedRowGivesEachSequenceItsOwnLogits) {
  World w("pack");
  auto& m = w.model->lm();
  m->eval();
  torch::NoGradGuard ng;
  std::vector<data::TokenSeq> seqs;
  for (int i = 0; i < 3; ++i) {
    vim::Sample s{i == 1 ? vim::Task::kM2T : vim::Task::kT2M, i, i, 0, false};
    seqs.push_back(vim::render_sequence(w.model->chat(), vim::build_conversation(w.model->templates(), s, w.cache->clip(i), Q), i));
  }
  auto packed = data::make_batch({seqs}, 0, 0);
  lm::ForwardOptions f;
  f.segment_ids = packed.segment_ids;
  auto all = m->forward(packed.ids, f);  // positions restart per segment by default
  int64_t off = 0;
  for (const auto& s : seqs) {
    auto ids = torch::tensor(std::vector<int64_t>(s.ids.begin(), s.ids.end()), torch::kLong).unsqueeze(0);
    auto alone = m->forward(ids);
    const int64_t n = ids.size(1);
    EXPECT_LT((all.narrow(1, off, n) - alone).abs().max().item<double>(), 2e-5);
    off += n;
  }
  // Padding rows (segment -1) change nothing for the real rows.
  auto padded = data::make_batch({{seqs[0]}, {seqs[1]}}, 0, 0);
  lm::ForwardOptions g;
  g.segment_ids = padded.segment_ids;
  auto two = m->forward(padded.ids, g);
  auto ids1 = torch::tensor(std::vector<int64_t>(seqs[1].ids.begin(), seqs[1].ids.end()), torch::kLong).unsqueeze(0);
  EXPECT_LT((two.narrow(0, 1, 1).narrow(1, 0, ids1.size(1)) - m->forward(ids1)).abs().max().item<double>(), 2e-5);
}

TEST(VimPacking, CheckpointedLayersGiveTheSameGradients) {
  World w("ckpt");
  auto& m = w.model->lm();
  m->train();
  auto ids = torch::randint(0, m->config().vocab_size, {2, 20}, torch::kLong);
  auto run = [&](bool on) {
    m->set_checkpointing(on);
    m->zero_grad();
    auto parts = lm::causal_lm_loss(m, m->hidden(ids), lm::shift_labels(ids));
    parts.sum.backward();
    std::vector<torch::Tensor> g;
    for (auto& p : m->parameters()) g.push_back(p.grad().clone());
    return std::make_pair(parts.sum.item<double>(), g);
  };
  auto [l0, g0] = run(false);
  auto [l1, g1] = run(true);
  EXPECT_NEAR(l0, l1, 1e-6 * std::abs(l0));
  for (size_t i = 0; i < g0.size(); ++i)
    EXPECT_LT((g0[i] - g1[i]).abs().max().item<double>(), 1e-5 * (1 + g0[i].abs().max().item<double>())) << i;
}

namespace {
// A t2m answer: every id up to the close is the motion id of its slot's level, the block ends after a
// whole frame (2 persons x Q levels) and is followed by the end token. Returns the motion ids' count.
size_t expect_whole_motion_block(const vim::VimModel& m, const std::vector<int64_t>& ids) {
  const auto& v = m.vocab();
  size_t i = 0;
  for (; i < ids.size() && v.info(static_cast<int>(ids[i])).kind == text::TokenKind::kMotion; ++i)
    EXPECT_EQ(v.info(static_cast<int>(ids[i])).q, static_cast<int>(i % Q)) << i;
  EXPECT_LT(i + 1, ids.size());
  if (i + 1 >= ids.size()) return i;
  EXPECT_EQ(ids[i], v.special("</motion>"));
  EXPECT_EQ(ids[i + 1], v.special("<|end|>"));
  EXPECT_EQ(i % (2 * Q), 0u);
  return i;
}
}  // namespace

TEST(VimGenerate, MotionBlocksHoldLegalIdsAndWholeFrames) {
  World w("gen");
  vim::GenerateSettings g;
  g.max_motion_steps = 6;
  g.max_new = 10;
  g.seed = 3;
  std::vector<vim::Request> reqs(2);
  reqs[0].caption = "two people hug slowly.";
  reqs[1].task = vim::Task::kM2T;
  reqs[1].codes = w.cache->clip(0).codes;
  auto res = w.model->generate(reqs, g);
  ASSERT_EQ(res.size(), 2u);
  const auto& v = w.model->vocab();
  const auto& ids = res[0].ids;
  const size_t i = expect_whole_motion_block(*w.model, ids);
  EXPECT_LE(i, static_cast<size_t>(6 * 2 * Q));
  EXPECT_EQ(res[0].codes.size(0) * 2 * Q, static_cast<int64_t>(i));
  // m2t: text ids only.
  for (int64_t id : res[1].ids)
    EXPECT_TRUE(id == v.special("<|end|>") || v.info(static_cast<int>(id)).kind == text::TokenKind::kText) << id;
  w.model->spec();
  vim::Request bad;
  bad.task = vim::Task::kT2MSingle;
  bad.caption = "x";
  EXPECT_NE(error_message([&] { w.model->generate({bad}, g); }).find("not trained on task t2m_single"), std::string::npos);
}

TEST(VimGuidance, CaptionDropoutLeavesEveryOtherDrawAsItWasAndDropsOnlyT2MCaptions) {
  World w("dropout");
  vim::TaskMix mix;
  mix.tasks = {vim::Task::kT2M, vim::Task::kM2T, vim::Task::kA2B, vim::Task::kB2A};
  mix.weights = {1, 1, 0.5, 0.5};
  vim::SampleStream plain(*w.cache, w.model->templates(), mix, 7);
  mix.caption_dropout = 0.5;
  vim::SampleStream dropping(*w.cache, w.model->templates(), mix, 7);
  int t2m = 0, dropped = 0;
  for (int64_t n = 0; n < 600; ++n) {
    const auto a = plain.draw(n), b = dropping.draw(n);
    ASSERT_EQ(a.task, b.task) << n;
    ASSERT_EQ(a.clip, b.clip) << n;
    ASSERT_EQ(a.tmpl, b.tmpl) << n;
    ASSERT_EQ(a.caption, b.caption) << n;
    ASSERT_FALSE(a.uncond) << n;
    if (b.task == vim::Task::kT2M) ++t2m, dropped += b.uncond;
    else ASSERT_FALSE(b.uncond) << n;
  }
  ASSERT_GT(t2m, 150);
  EXPECT_NEAR(static_cast<double>(dropped) / t2m, 0.5, 0.1);
  // An unconditional sample's prompt is its phrasing with nothing in the caption's place.
  vim::Sample s{vim::Task::kT2M, 2, 0, 1, false};
  s.uncond = true;
  const auto clip = w.cache->clip(2);
  const auto conv = vim::build_conversation(w.model->templates(), s, clip, Q);
  const auto empty = vim::build_prompt(w.model->templates(), vim::Task::kT2M, 0, "", clip.codes, Q, false);
  EXPECT_EQ(conv.at(0).segments.at(0).text, empty.at(0).segments.at(0).text);
  EXPECT_EQ(conv.at(0).segments.at(0).text.find(clip.captions[1]), std::string::npos);
}

TEST(VimGuidance, GuidedT2MKeepsTheSlotRulesAndNeedsAModelTrainedForIt) {
  World w("guided");
  vim::GenerateSettings g;
  g.max_motion_steps = 6;
  g.seed = 3;
  g.greedy = true;
  std::vector<vim::Request> reqs(2);
  reqs[0].caption = "two people hug slowly.";
  reqs[1].task = vim::Task::kM2T;  // unguided beside a guided row
  reqs[1].codes = w.cache->clip(0).codes;
  const auto plain = w.model->generate(reqs, g);
  g.guidance = 4;
  EXPECT_NE(error_message([&] { w.model->generate(reqs, g); }).find("trained with data.caption_dropout 0"),
            std::string::npos);
  auto spec = w.model->spec();
  spec.caption_dropout = 0.1;
  vim::VimModel m(w.model->lm(), w.model->vocab(), w.text, spec, w.model->templates());
  const auto res = m.generate(reqs, g);
  expect_whole_motion_block(m, res[0].ids);
  EXPECT_EQ(res[1].ids, plain[1].ids);  // the m2t row is not guided
  EXPECT_NE(res[0].ids, plain[0].ids);  // a random LM: guidance 4 changes the greedy motion
}

namespace {
struct StopAt : train::PretrainTask {
  using PretrainTask::PretrainTask;
  int64_t stop_at = -1;
  void after_step(int64_t step) override {
    PretrainTask::after_step(step);
    if (step + 1 == stop_at) core::request_stop_for_test(SIGINT);
  }
};

std::vector<torch::Tensor> train_run(World& w, const std::string& run, int64_t stop_at, bool resume) {
  w.cfg.run.dir = (w.dir / run).string();
  auto m = lm::build_random(w.model->lm()->config(), 0.1, 11);
  vim::attach_depth_head(m, w.model->spec(), 13);
  vim::VimModel model(m, w.model->vocab(), w.text, w.model->spec(), w.model->templates());
  StopAt task(w.cfg, model, w.cache, nullptr);
  task.stop_at = stop_at;
  train::TrainerOptions o;
  o.run_dir = w.cfg.run.dir;
  o.resume = resume;
  o.train.steps = 6;
  o.train.grad_accum = 2;
  o.train.val_every = 0;
  o.train.ckpt_every = 100;
  o.train.log_every = 3;
  o.optim.lr = 1e-2;
  o.optim.warmup_steps = 1;
  train::Trainer(o, task).fit();
  std::vector<torch::Tensor> out;
  for (auto& [n, t] : vim::trainable_tensors(m)) out.push_back(t.clone());
  return out;
}
}  // namespace

TEST(PretrainTask, StopAndResumeWithPackingGivesIdenticalWeights) {
  World w("resume");
  ASSERT_TRUE(w.cfg.data.pack);
  auto straight = train_run(w, "a", -1, true);
  train_run(w, "b", 3, true);  // stops after step 3 with a checkpoint
  core::request_stop_for_test(0);
  auto resumed = train_run(w, "b", -1, true);
  ASSERT_EQ(straight.size(), resumed.size());
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << i;
  // And training moved the weights.
  auto m = lm::build_random(w.model->lm()->config(), 0.1, 11);
  EXPECT_FALSE(torch::equal(vim::trainable_tensors(m)[0].second, straight[0]));
}

TEST(PretrainTask, TooLongSamplesAreSkippedAndCounted) {
  World w("long");
  std::vector<int64_t> lengths;
  {
    vim::VimModel model(w.model->lm(), w.model->vocab(), w.text, w.model->spec(), w.model->templates());
    train::PretrainTask task(w.cfg, model, w.cache, nullptr);
    for (int64_t n = 0; n < 64; ++n)
      if (auto s = task.batches().render(n)) lengths.push_back(static_cast<int64_t>(s->ids.size()));
  }
  ASSERT_EQ(lengths.size(), 64u) << "all samples fit the world's max_length";
  std::sort(lengths.begin(), lengths.end());
  ASSERT_LT(lengths.front(), lengths.back());
  w.cfg.data.max_length = lengths[lengths.size() / 2];  // about half the samples fit
  vim::VimModel model(w.model->lm(), w.model->vocab(), w.text, w.model->spec(), w.model->templates());
  train::PretrainTask task(w.cfg, model, w.cache, nullptr);
  for (int i = 0; i < 4; ++i) {
    auto b = task.batches().next();
    EXPECT_LE(b.ids.size(1), w.cfg.data.max_length);
  }
  EXPECT_GT(task.batches().too_long(), 0);
}

// ---- stage 3 (vim/dialogue.h, the instruct step) ----

namespace {

// A conversation of `clips` ids: remember motion 1, okay, a question with motion 2, the answer.
data::ConversationRecord memory_dialogue(const std::string& first, const std::string& second, const std::string& answer) {
  data::ConversationRecord r;
  r.id = "m" + first + "_" + second;
  r.task = "reasoning";
  r.turns = {{"user", "remember this.", first}, {"assistant", "okay.", ""},
             {"user", "what did they do before this?", second}, {"assistant", answer, ""}};
  return r;
}

vim::ClipLookup lookup_of(const data::TokenCache& c) {
  return [&c](const std::string& id) -> std::optional<data::TokenClip> {
    auto k = c.find(id);
    if (!k) return std::nullopt;
    return c.clip(*k);
  };
}

}  // namespace

TEST(InstructLoss, OnlyAssistantTurnsAreTargetsAndTheLossIsTheirCrossEntropy) {
  World w("imask");
  auto& m = *w.model;
  auto conv = vim::build_dialogue(memory_dialogue("1", "2", "they hug."), lookup_of(*w.cache), Q);
  auto fit = vim::fit_dialogue(m.chat(), conv, 4096, vim::conversation_tag("reasoning"));
  ASSERT_TRUE(fit.has_value());
  const auto& seq = fit->seq;
  // Independently of the renderer's mask: scan the role tokens; tokens after <|assistant|> up to and
  // including its <|end|> are predicted, nothing else is.
  const int user = m.vocab().special("<|user|>"), asst = m.vocab().special("<|assistant|>"), end = m.vocab().special("<|end|>");
  std::vector<int64_t> assistant_pos;  // positions t whose next token is an assistant token
  bool inside = false;
  for (size_t t = 0; t < seq.ids.size(); ++t) {
    const int id = seq.ids[t];
    if (t > 0 && inside) assistant_pos.push_back(static_cast<int64_t>(t) - 1);
    if (id == asst) inside = true;
    else if (id == user) inside = false;
    else if (id == end && inside) inside = false;
  }
  ASSERT_GT(assistant_pos.size(), 6u);  // "okay." and "they hug." with their end tokens
  std::vector<int64_t> expect(seq.ids.size(), -100);
  for (auto t : assistant_pos) expect[static_cast<size_t>(t)] = seq.ids[static_cast<size_t>(t) + 1];
  EXPECT_EQ(seq.targets, expect);

  // The training step's loss and gradients equal the cross-entropy over those positions alone.
  auto batch = data::make_batch({{seq}}, m.vocab().special("<pad>"));
  m.lm()->zero_grad();
  auto out = train::lm_step(m, batch);
  out.loss.backward();
  std::vector<torch::Tensor> g1;
  for (auto& p : m.lm()->parameters()) g1.push_back(p.grad().clone());
  m.lm()->zero_grad();
  auto logits = m.lm()->forward(batch.ids).squeeze(0);  // [T, V]
  auto pos = torch::tensor(assistant_pos, torch::kLong);
  auto tgt = batch.ids.squeeze(0).index_select(0, pos + 1);
  auto ref = torch::nn::functional::cross_entropy(logits.index_select(0, pos), tgt,
                                                  torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  ref.backward();
  EXPECT_NEAR(out.loss.item<double>(), ref.item<double>(), 1e-4 * std::abs(ref.item<double>()));
  EXPECT_EQ(out.items, static_cast<int64_t>(assistant_pos.size()));
  size_t k = 0;
  for (auto& p : m.lm()->parameters()) {
    EXPECT_TRUE(torch::allclose(p.grad(), g1[k], 1e-4, 1e-6)) << k;
    ++k;
  }
  // Control: were a user-turn position a target, the loss would change (the check can fail).
  auto leaked = batch.targets.clone();
  leaked[0][1] = batch.ids[0][2];
  auto b2 = batch;
  b2.targets = leaked;
  EXPECT_GT(std::abs(train::lm_step(m, b2).loss.item<double>() - out.loss.item<double>()), 1e-3);
}

TEST(InstructMultiTurn, TheAnswerOfTurnFourDependsOnTheMotionOfTurnOne) {
  // A learned check: the word of the last answer is a function of the first turn's motion only (the
  // motion of turn 3 is unrelated), so a model answering right must read turn 1.
  World w("imulti");
  auto& m = *w.model;
  const std::vector<std::string> words = {"they hug.", "they push.", "they wave.", "they bow."};
  const auto clips = lookup_of(*w.cache);
  auto record = [&](int first, int second) {
    return memory_dialogue(std::to_string(first + 1), std::to_string(second + 1), words[static_cast<size_t>(first % 4)]);
  };
  std::vector<data::TokenSeq> seqs;
  for (int a = 0; a < 8; ++a)
    for (int b = 8; b < 20; ++b)  // clips 20..23 stay out: the test's turn-3 motions are new
      seqs.push_back(vim::fit_dialogue(m.chat(), vim::build_dialogue(record(a, b), clips, Q), 4096, 0)->seq);
  torch::manual_seed(1);
  torch::optim::Adam opt(m.lm()->parameters(), torch::optim::AdamOptions(3e-3));
  m.lm()->train();
  std::mt19937_64 rng(2);
  for (int step = 0; step < 300; ++step) {
    std::vector<std::vector<data::TokenSeq>> rows;
    for (int r = 0; r < 8; ++r) rows.push_back({seqs[rng() % seqs.size()]});
    auto out = train::lm_step(m, data::make_batch(rows, m.vocab().special("<pad>")));
    opt.zero_grad();
    (out.loss / static_cast<double>(out.items)).backward();
    opt.step();
  }
  m.lm()->eval();
  vim::GenerateSettings g;
  g.greedy = true;
  g.max_new = 8;
  g.max_motion_steps = 4;
  int right = 0, total = 0;
  for (int a = 0; a < 8; ++a) {
    auto r = record(a, 20 + a % 4);
    r.turns.pop_back();
    auto turn = m.respond({vim::build_dialogue(r, clips, Q)}, g).at(0);
    std::string text;
    for (const auto& s : turn.segments)
      if (s.kind == text::Segment::Kind::kText) text += s.text;
    right += text.find(words[static_cast<size_t>(a % 4)].substr(5, 3)) != std::string::npos;
    ++total;
  }
  EXPECT_GE(right, 7) << right << " of " << total;
}

TEST(VimBatches, RankShardsTogetherAreTheGlobalBatch) {
  // Sample n: 3 + n % 5 tokens, targets on all but the first.
  vim::SampleSource source = [](int64_t n) {
    vim::SourceItem it;
    data::TokenSeq s;
    for (int64_t t = 0; t < 3 + n % 5; ++t) {
      s.ids.push_back(static_cast<int>(10 + (n * 7 + t) % 50));
      s.targets.push_back(t == 0 ? -100 : 10 + (n * 7 + t + 1) % 50);
    }
    s.tag = n % 3;
    it.seq = std::move(s);
    return it;
  };
  for (const bool pack : {true, false}) {
    vim::BatchOptions o;
    o.batch_size = 4;
    o.max_length = 12;
    o.pack = pack;
    o.bucket_batches = 2;
    o.layers = 1;
    for (const int64_t W : {2, 3, 5}) {  // even, uneven and more ranks than rows
      std::vector<std::unique_ptr<vim::BatchStream>> ranks;
      for (int64_t r = 0; r < W; ++r) {
        auto ro = o;
        ro.shard_rank = r;
        ro.shard_count = W;
        ranks.push_back(std::make_unique<vim::BatchStream>(source, 0, ro, 5));
      }
      vim::BatchStream ref(source, 0, o, 5);
      for (int step = 0; step < 4; ++step) {
        auto g = ref.next();
        std::vector<torch::Tensor> ids, targets;
        int64_t tokens = 0;
        for (auto& r : ranks) {
          auto b = r->next();
          EXPECT_EQ(b.ids.size(1), g.ids.size(1)) << "padded to the global batch's longest row";
          if (b.tokens == 0) {  // an empty slice: a row that adds no loss
            EXPECT_TRUE(b.targets.eq(-100).all().item<bool>());
            continue;
          }
          ids.push_back(b.ids);
          targets.push_back(b.targets);
          tokens += b.tokens;
        }
        EXPECT_TRUE(torch::equal(torch::cat(ids), g.ids)) << "pack " << pack << " W " << W << " step " << step;
        EXPECT_TRUE(torch::equal(torch::cat(targets), g.targets));
        EXPECT_EQ(tokens, g.tokens);
      }
      EXPECT_EQ(ranks.back()->state(), ref.state());  // the position is the global stream's
    }
  }
}

// ---- the depth head (docs/depth_head.md) ----

TEST(VimDepth, OnePositionPerSlotWithItsCodesAndEndBeforeTheClose) {
  World w("depth_layout", true);
  const auto clip = w.cache->clip(2);
  const auto& v = w.model->vocab();
  vim::Sample s{vim::Task::kT2M, 2, 0, 1, false};
  const auto conv = vim::build_conversation(w.model->templates(), s, clip, Q);
  const auto flat = vim::render_sequence(w.model->chat(), conv, 0);
  const auto d = vim::render_sequence(w.model->chat(), conv, 0, /*depth=*/true);
  const int64_t T = clip.codes.size(0), slots = T * 2;
  ASSERT_EQ(d.levels, Q);
  EXPECT_EQ(static_cast<int64_t>(d.ids.size()), static_cast<int64_t>(flat.ids.size()) - slots * (Q - 1));
  const size_t o = static_cast<size_t>(std::find(d.ids.begin(), d.ids.end(), v.special("<motion>")) - d.ids.begin());
  ASSERT_LT(o + static_cast<size_t>(slots) + 1, d.ids.size());
  for (int64_t i = 0; i < slots; ++i) {  // slot i = (step i / 2, person i % 2): level-0 id, codes beside
    const size_t j = o + 1 + static_cast<size_t>(i);
    const auto c = clip.codes[i / 2][i % 2];
    EXPECT_EQ(d.ids[j], v.motion_id(0, static_cast<int>(c[0].item<int64_t>()))) << i;
    for (int64_t q = 0; q < Q; ++q) {
      EXPECT_EQ(d.codes[j * Q + q], c[q].item<int64_t>()) << i;
      // the position before predicts this slot through the depth head, not the LM head
      EXPECT_EQ(d.depth_targets[(j - 1) * Q + q], c[q].item<int64_t>()) << i;
    }
    EXPECT_EQ(d.targets[j - 1], -100) << i;
  }
  const size_t last = o + static_cast<size_t>(slots), close = last + 1;
  EXPECT_EQ(d.ids[close], v.special("</motion>"));
  EXPECT_EQ(d.depth_targets[last * Q], K);  // END
  for (int64_t q = 1; q < Q; ++q) EXPECT_EQ(d.depth_targets[last * Q + q], -100);
  EXPECT_EQ(d.targets[last], -100);
  EXPECT_EQ(d.targets[close], v.special("<|end|>"));  // after the block the LM head predicts as before
  for (size_t j = 0; j < o; ++j) EXPECT_EQ(d.targets[j], flat.targets[j]) << j;  // the prompt is unchanged
  // A motion in the user turn (m2t): slots collapse too, but take no target of either kind.
  vim::Sample m{vim::Task::kM2T, 2, 0, 1, false};
  const auto md = vim::render_sequence(w.model->chat(), vim::build_conversation(w.model->templates(), m, clip, Q), 0, true);
  for (int64_t t : md.depth_targets) EXPECT_EQ(t, -100);
  EXPECT_EQ(std::count_if(md.codes.begin(), md.codes.end(), [](int c) { return c >= 0; }), slots * Q);
}

TEST(VimDepth, IncrementalSlotDecodingEqualsTheTeacherForcedHead) {
  lm::DepthHeadOptions o;
  o.hidden = 24, o.width = 16, o.layers = 2, o.heads = 4, o.ffn = 20, o.levels = 4, o.codes = 11;
  lm::DepthHead head(o, torch::TensorOptions().dtype(torch::kFloat32));
  head->init_weights(0.3, 5);
  for (const auto& p : head->named_parameters()) {  // every tensor initialized (gains to one)
    EXPECT_TRUE(torch::isfinite(p.value()).all().item<bool>()) << p.key();
    if (p.key().find("norm") != std::string::npos) EXPECT_TRUE(p.value().eq(1).all().item<bool>()) << p.key();
    else EXPECT_GT(p.value().abs().sum().item<double>(), 0) << p.key();
  }
  torch::manual_seed(2);
  auto h = torch::randn({3, 24});
  std::vector<torch::Tensor> seen;
  torch::NoGradGuard ng;
  auto codes = head->sample_slot(h, [&](int64_t q, const torch::Tensor& lg) {
    EXPECT_EQ(lg.size(1), q == 0 ? 12 : 11);
    seen.push_back(lg.clone());
    return lg.narrow(1, 0, 11).argmax(1);  // a code at every level (no END)
  });
  ASSERT_EQ(codes.sizes(), (std::vector<int64_t>{3, 4}));
  auto [lg, end] = head->logits(head->states(h, codes));  // teacher forcing with the chosen codes
  for (int64_t q = 0; q < 4; ++q) {
    auto ref = q == 0 ? torch::cat({lg.select(1, 0), end.unsqueeze(1)}, 1) : lg.select(1, q);
    EXPECT_LT((seen[q] - ref).abs().max().item<double>(), 1e-5) << q;
    EXPECT_TRUE(torch::equal(codes.select(1, q), ref.narrow(1, 0, 11).argmax(1))) << q;
  }
}

TEST(VimDepth, GenerationWritesWholeStepsThroughTheHead) {
  World w("depth_gen", true);
  vim::GenerateSettings g;
  g.max_motion_steps = 5;
  g.max_new = 8;
  g.seed = 4;
  std::vector<vim::Request> reqs(2);
  reqs[0].caption = "two people hug slowly.";
  reqs[1].task = vim::Task::kA2B;
  reqs[1].codes = w.cache->clip(1).codes;
  auto res = w.model->generate(reqs, g);
  const auto& v = w.model->vocab();
  for (const auto& r : res) {
    ASSERT_EQ(r.codes.dim(), 3);
    EXPECT_EQ(r.codes.size(2), Q);
    EXPECT_LE(r.codes.size(0), 5);
    EXPECT_TRUE(r.codes.ge(0).all().item<bool>() && r.codes.lt(K).all().item<bool>());
    // one LM position per slot: the level-0 id of each generated slot, then the close and end tokens
    const int64_t P = r.codes.size(1), n = r.codes.size(0) * P;
    ASSERT_GE(static_cast<int64_t>(r.ids.size()), n + 1);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(r.ids[i], v.motion_id(0, static_cast<int>(r.codes[i / P][i % P][0].item<int64_t>()))) << i;
    EXPECT_EQ(r.ids[n], v.special(P == 2 ? "</motion>" : "</motion_b>"));
  }
  g.min_motion_steps = 5;  // a fixed length: END is not allowed before it
  for (const auto& r : w.model->generate(reqs, g)) EXPECT_EQ(r.codes.size(0), 5);
  g.min_motion_steps = 6;
  EXPECT_NE(error_message([&] { w.model->generate(reqs, g); }).find("min_motion_steps"), std::string::npos);
}

TEST(VimDepth, StopAndResumeGivesIdenticalWeightsHeadIncluded) {
  World w("depth_resume", true);
  auto straight = train_run(w, "a", -1, true);
  train_run(w, "b", 3, true);
  core::request_stop_for_test(0);
  auto resumed = train_run(w, "b", -1, true);
  ASSERT_EQ(straight.size(), resumed.size());
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(torch::equal(straight[i], resumed[i])) << i;
  // The head is among the trained tensors, and it moved.
  auto m = lm::build_random(w.model->lm()->config(), 0.1, 11);
  vim::attach_depth_head(m, w.model->spec(), 13);
  size_t head = 0, moved = 0;
  const auto init = vim::trainable_tensors(m);
  for (size_t i = 0; i < init.size(); ++i)
    if (init[i].first.rfind("depth_head.", 0) == 0) ++head, moved += !torch::equal(init[i].second, straight[i]);
  EXPECT_EQ(head, 2u * 7 + 6);
  EXPECT_GT(moved, head / 2);
}

TEST(VimDepth, SpecRoundTripsAndRefusesAnUnknownHead) {
  World w("depth_spec", true);
  const auto j = w.model->spec().to_json();
  const auto back = vim::ModelSpec::from_json(j, "spec");
  EXPECT_TRUE(back.depth_head());
  EXPECT_EQ(back.depth.width, 16);
  EXPECT_EQ(back.to_json(), j);
  auto bad = j;
  bad["motion_head"] = "deep";
  EXPECT_NE(error_message([&] { vim::ModelSpec::from_json(bad, "lm/vim.json"); }).find("motion_head is 'deep'"), std::string::npos);
  auto old = j;
  old.erase("motion_head");
  old.erase("depth_head");
  EXPECT_FALSE(vim::ModelSpec::from_json(old, "spec").depth_head());  // runs made before the key are flat
  // A flat batch given to a depth model is a named error, not a silent flat step.
  vim::Sample s{vim::Task::kT2M, 0, 0, 0, false};
  auto seq = vim::render_sequence(w.model->chat(), vim::build_conversation(w.model->templates(), s, w.cache->clip(0), Q), 0);
  auto b = data::make_batch({{seq}}, 0);
  EXPECT_NE(error_message([&] { w.model->hidden(b); }).find("depth layout"), std::string::npos);
}

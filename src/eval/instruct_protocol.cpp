// Stage-3 evaluation (instruct_protocol.h): each held-out conversation is cut before the assistant turn
// under test, answered by the run, and scored against the true scene or answer of the generator.
#include "vimo/eval/instruct_protocol.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/core/log.h"
#include "vimo/core/progress.h"
#include "vimo/core/run.h"
#include "vimo/data/conversation_synth.h"
#include "vimo/data/conversations.h"
#include "vimo/data/packed.h"
#include "vimo/data/token_cache.h"
#include "vimo/eval/evaluator.h"
#include "vimo/eval/fid.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/eval/protocols.h"
#include "vimo/motion/features.h"
#include "vimo/vim/dialogue.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace vimo::eval {
namespace {

// A rate over n cases with its binomial 95% interval half-width.
ojson rate(int64_t hits, int64_t n) {
  const double p = n > 0 ? static_cast<double>(hits) / static_cast<double>(n) : 0.0;
  return {{"mean", p}, {"ci95", n > 0 ? 1.96 * std::sqrt(p * (1 - p) / static_cast<double>(n)) : 0.0}};
}
// A mean with 1.96 sigma / sqrt(n).
ojson mean_ci(const std::vector<double>& v) {
  if (v.empty()) return {{"mean", 0.0}, {"ci95", 0.0}};
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  const double sd = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0.0;
  return {{"mean", m}, {"ci95", 1.96 * sd / std::sqrt(static_cast<double>(v.size()))}};
}
ojson value(double x) { return {{"mean", x}, {"ci95", 0.0}}; }

// The first two-person motion of an answer, decoded: [T, 2, 262], undefined when there is none.
torch::Tensor answer_motion(vim::VimModel& m, const text::Turn& t) {
  for (const auto& s : t.segments) {
    if (s.kind != text::Segment::Kind::kMotion) continue;
    const torch::Tensor codes = vim::segment_codes(s, m.spec().layers);  // [T, 2, Q]
    if (!codes.defined()) return {};
    auto f = m.decode_motion(codes).cpu();
    return torch::isfinite(f).all().item<bool>() ? f : torch::Tensor();
  }
  return {};
}

// An answer as the sample cache keeps it, and back.
json turn_json(const text::Turn& t) {
  json segs = json::array();
  for (const auto& s : t.segments)
    segs.push_back({{"kind", static_cast<int>(s.kind)}, {"text", s.text}, {"codes", s.codes}});
  return {{"role", static_cast<int>(t.role)}, {"segments", segs}};
}
text::Turn turn_from(const json& j) {
  text::Turn t;
  t.role = static_cast<text::Role>(j.at("role").get<int>());
  for (const auto& s : j.at("segments")) {
    text::Segment g;
    g.kind = static_cast<text::Segment::Kind>(s.at("kind").get<int>());
    g.text = s.at("text").get<std::string>();
    g.codes = s.at("codes").get<std::vector<int>>();
    t.segments.push_back(std::move(g));
  }
  return t;
}

double joint_error(const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t t = std::min(a.size(0), b.size(0));
  return mpjpe_mm(motion::features_to_joints(a.narrow(0, 0, t)), motion::features_to_joints(b.narrow(0, 0, t)));
}

}  // namespace

ojson evaluate_instruct(const InstructEvalOptions& o) {
  VIMO_CHECK(!o.conversations.empty(), "eval instruct: --conversations DIR is required (made by `vimo data conversations --synthetic`)");
  VIMO_CHECK(!o.tokens.empty() && !o.packed.empty(), "eval instruct: --tokens DIR and --packed DIR (the conversation clips, "
                                                     "token-cached and packed) are required");
  const fs::path conv_file = fs::path(o.conversations) / (o.split + ".jsonl"), meta_file = fs::path(o.conversations) / "meta.json";
  const fs::path tok_file = fs::path(o.tokens) / (o.split + ".h5"), packed_file = fs::path(o.packed) / (o.split + ".h5");
  for (const auto& p : {conv_file, meta_file, tok_file, packed_file})
    VIMO_CHECK(fs::exists(p), "eval instruct: '" + p.string() + "' does not exist");
  const auto dev = core::resolve_device("auto");
  auto model = vim::VimModel::load_run(o.run, dev);
  auto ev = load_evaluator(o.evaluator, o.clip_vocab, dev);
  auto cache = data::TokenCache::open(tok_file.string());
  cache.check_layout(model.spec().codebook_size, cache.info().num_quantizers, "LM run '" + o.run + "'");
  auto ds = data::PackedDataset::open(packed_file.string());
  VIMO_CHECK(ds.frames(0, 0, 1).size(2) == ev.model->options().motion_features,
             "'" + packed_file.string() + "' holds features of another size than the evaluator '" + ev.path + "' reads");
  std::map<std::string, int64_t> packed_row;
  for (int64_t i = 0; i < ds.size(); ++i) packed_row[ds.index().ids[i]] = i;
  auto real = [&](const std::string& id) {
    auto it = packed_row.find(id);
    VIMO_CHECK(it != packed_row.end(), "eval instruct: clip '" + id + "' is not in '" + packed_file.string() + "'");
    return ds.frames(it->second);
  };
  const auto records = data::read_conversations(conv_file.string(), [&](const std::string& id) { return cache.find(id).has_value(); });
  std::map<std::string, json> meta;
  {
    json m;
    try {
      m = json::parse(core::read_file(meta_file.string()));
    } catch (const json::exception& e) {
      throw Error("'" + meta_file.string() + "' is not valid JSON: " + e.what());
    }
    for (const auto& c : m.at("conversations")) meta[c.at("id").get<std::string>()] = c;
  }

  // The conversations under test, each cut before its scored assistant turn.
  struct Case {
    const data::ConversationRecord* rec;
    json meta;
    size_t answer;  // index of the scored assistant turn
  };
  std::vector<Case> cases;
  std::map<std::string, int64_t> per_task;
  for (const auto& r : records) {
    auto it = meta.find(r.id);
    if (it == meta.end() || (r.task != "editing" && r.task != "reasoning" && r.task != "story")) continue;
    if (o.limit > 0 && per_task[r.task] >= o.limit) continue;
    ++per_task[r.task];
    size_t answer = r.turns.size() - 1;  // story: the assistant turn playing the scene after the first
    if (r.task == "story") {
      const std::string target = it->second.value("target", std::string());
      answer = r.turns.size();
      for (size_t k = 0; k < r.turns.size(); ++k)
        if (r.turns[k].role == "assistant" && r.turns[k].motion == target) answer = k;
    }
    if (answer >= r.turns.size()) continue;
    cases.push_back({&r, it->second, answer});
  }
  VIMO_CHECK(!cases.empty(), "eval instruct: no editing, reasoning or story conversation of '" + conv_file.string() +
                                 "' has an entry in '" + meta_file.string() + "'");
  auto lookup = [&](const std::string& id) -> std::optional<data::TokenClip> {
    auto k = cache.find(id);
    if (!k) return std::nullopt;
    return cache.clip(*k);
  };
  const auto& g = o.sampling;
  const int64_t budget = model.lm()->config().max_position_embeddings - (g.max_new + g.max_motion_steps * 2 * model.spec().layers + 2);
  std::vector<text::Turn> answers(cases.size());
  std::vector<text::Conversation> prompts;
  int64_t dropped = 0;
  std::string ids;
  for (const auto& c : cases) {
    data::ConversationRecord cut = *c.rec;
    cut.turns.resize(c.answer);
    auto conv = vim::build_dialogue(cut, lookup, model.spec().layers);
    dropped += vim::fit_prompt(model.chat(), conv, budget);
    prompts.push_back(std::move(conv));
    ids += c.rec->id + ",";
  }
  // Answers are cached batch by batch under <run>/eval/samples/, keyed by the checkpoint, the sampling
  // settings and the cases: a killed evaluation continues where it stopped.
  const std::string key = sample_key(o.run, "instruct:" + std::to_string(std::hash<std::string>{}(ids)), g, cases.size(), o.rows);
  const auto t0 = std::chrono::steady_clock::now();
  cached_batches(
      fs::path(o.run) / "eval" / "samples" / ("instruct_" + o.split), key, static_cast<int64_t>(cases.size()), o.rows,
      "instruct answers",
      [&](int64_t i, int64_t e) {
        auto out = model.respond(std::vector<text::Conversation>(prompts.begin() + i, prompts.begin() + e), g);
        json j = json::array();
        for (const auto& t : out) j.push_back(turn_json(t));
        return j;
      },
      [&](int64_t k, const json& j) { answers[static_cast<size_t>(k)] = turn_from(j); });
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Scores.
  std::vector<double> gen_err, src_err, copy_err, truth_tok_err;
  std::vector<torch::Tensor> gen_clips, tgt_clips, src_clips, tok_clips;  // normalized, every editing case but gen
  std::vector<int64_t> gen_case;  // editing case (index into tgt_clips) of each generated clip
  std::vector<std::string> tgt_caps, src_caps, edit_kinds;
  std::map<std::string, std::array<int64_t, 2>> pref_gen, pref_tok, pref_true;  // kind -> preferred, cases
  int64_t edit_n = 0, closer = 0, closer_copy = 0, no_motion = 0, truth_tok_closer = 0;
  // kind -> cases, closer, no motion, closer than the copy, the tokenized truth closer than the source
  std::map<std::string, std::array<int64_t, 5>> per_edit;
  std::vector<CaptionSet> reasoning_sets;
  int64_t reason_n = 0, reason_ok = 0, story_n = 0, story_valid = 0, story_exact = 0;
  std::map<std::string, std::array<int64_t, 2>> per_form;
  // A clip through the run's own tokenizer at the LM's levels.
  auto tokenized = [&](const torch::Tensor& f) { return model.decode_motion(model.encode_motion(f.to(dev))).cpu(); };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto& task = c.rec->task;
    if (task == "editing") {
      const auto kind = c.meta.at("edit").get<std::string>();
      auto& pe = per_edit[kind];
      ++edit_n, ++pe[0];
      auto tgt = real(c.meta.at("target").get<std::string>()), src = real(c.meta.at("source").get<std::string>());
      const double se = joint_error(src, tgt);
      src_err.push_back(se);
      // The copy baseline: the source through the run's own tokenizer and levels, the best a model that
      // ignores the instruction can return (fine edits are smaller than the tokenizer's error).
      const double ce = joint_error(tokenized(src), tgt);
      copy_err.push_back(ce);
      // The ceiling: the true edited scene itself through the tokenizer, the best any answer can return.
      const auto tt = tokenized(tgt);
      const double te = joint_error(tt, tgt);
      truth_tok_err.push_back(te);
      if (te < se) ++truth_tok_closer, ++pe[4];
      tgt_clips.push_back(ev.normalizer.normalize(tgt));
      src_clips.push_back(ev.normalizer.normalize(src));
      tok_clips.push_back(ev.normalizer.normalize(tt));
      tgt_caps.push_back(c.meta.at("target_caption").get<std::string>());
      src_caps.push_back(c.meta.at("source_caption").get<std::string>());
      edit_kinds.push_back(kind);
      auto gen = answer_motion(model, answers[i]);
      if (!gen.defined()) {
        ++no_motion, ++pe[2];
        continue;
      }
      const double ge = joint_error(gen, tgt);
      gen_err.push_back(ge);
      if (ge < se) ++closer, ++pe[1];
      if (ge < ce) ++closer_copy, ++pe[3];
      gen_clips.push_back(ev.normalizer.normalize(gen));
      gen_case.push_back(static_cast<int64_t>(tgt_clips.size()) - 1);
    } else if (task == "reasoning") {
      ++reason_n;
      const auto text = vim::turn_text(answers[i]);
      const auto named = data::named_interactions(text);
      const bool ok = !named.empty() && named[0] == c.meta.at("answer_type").get<std::string>();
      reason_ok += ok;
      auto& pf = per_form[c.meta.value("form", std::string("?"))];
      ++pf[0], pf[1] += ok;
      reasoning_sets.push_back({c.rec->id, {c.rec->turns[c.answer].text}, text.empty() ? std::string("(no text)") : text});
    } else {
      ++story_n;
      const auto named = data::named_interactions(vim::turn_text(answers[i]));
      if (named.empty()) continue;
      bool valid = false;
      for (const auto& n : c.meta.at("next_after_first")) valid |= n.get<std::string>() == named[0];
      story_valid += valid;
      story_exact += named[0] == c.meta.at("types").at(1).get<std::string>();
    }
  }

  ojson j = {{"task", "instruct"}, {"split", o.split}, {"run", o.run}, {"conversations", o.conversations}};
  ojson editing = {{"closer_than_source_rate", rate(closer, edit_n)},
                   {"closer_than_copy_rate", rate(closer_copy, edit_n)},
                   {"mpjpe_mm", mean_ci(gen_err)}};
  ojson source = {{"mpjpe_mm", mean_ci(src_err)}};
  ojson copy = {{"mpjpe_mm", mean_ci(copy_err)}};
  ojson truth_tok = {{"closer_than_source_rate", rate(truth_tok_closer, edit_n)}, {"mpjpe_mm", mean_ci(truth_tok_err)}};
  ojson truth;
  if (!tgt_clips.empty()) {
    auto te = embed_clips(ev.model, tgt_clips), se = embed_clips(ev.model, src_clips), ke = embed_clips(ev.model, tok_clips);
    auto tt = embed_ids(ev.model, ev.tokenize(tgt_caps), ev.eot), st = embed_ids(ev.model, ev.tokenize(src_caps), ev.eot);
    // The evaluator prefers the edited caption for a motion that lies nearer to it (Euclidean, as MM-Dist);
    // cases whose captions do not tell the edit apart (e.g. persons swapped) are left out. m: the motions
    // scored, case_of: their editing case; counts per edit kind go to `kinds` (hits, cases).
    auto preferred = [&](const torch::Tensor& m, const std::vector<int64_t>& case_of,
                         std::map<std::string, std::array<int64_t, 2>>& kinds) {
      auto idx = torch::tensor(case_of, torch::kLong);
      auto dt = (m - tt.index_select(0, idx)).norm(2, 1), ds_ = (m - st.index_select(0, idx)).norm(2, 1);
      int64_t pref = 0, n = 0;
      for (size_t k = 0; k < case_of.size(); ++k) {
        const auto c = static_cast<size_t>(case_of[k]);
        if (tgt_caps[c] == src_caps[c]) continue;
        const bool hit = dt[static_cast<int64_t>(k)].item<double>() < ds_[static_cast<int64_t>(k)].item<double>();
        ++n, pref += hit;
        ++kinds[edit_kinds[c]][1], kinds[edit_kinds[c]][0] += hit;
      }
      return std::make_pair(pref, n);
    };
    std::vector<int64_t> all(tgt_clips.size());
    for (size_t k = 0; k < all.size(); ++k) all[k] = static_cast<int64_t>(k);
    const auto [tp, tn] = preferred(te, all, pref_true);
    const auto [kp, kn] = preferred(ke, all, pref_tok);
    truth = {{"caption_preferred_rate", rate(tp, tn)}};
    truth_tok["caption_preferred_rate"] = rate(kp, kn);
    if (tgt_clips.size() >= 2) {
      source["fid"] = value(fid(se, te));
      truth_tok["fid"] = value(fid(ke, te));
    }
    if (!gen_clips.empty()) {
      auto ge = embed_clips(ev.model, gen_clips);
      const auto [gp, gn] = preferred(ge, gen_case, pref_gen);
      editing["caption_preferred_rate"] = rate(gp, gn);
      j["caption_preference_cases"] = gn;
      if (gen_clips.size() >= 2) editing["fid"] = value(fid(ge, te.index_select(0, torch::tensor(gen_case, torch::kLong))));
    }
  }
  ojson reasoning = {{"accuracy", rate(reason_ok, reason_n)}};
  {
    // The measure: before/after questions only (why and show-before are scored in "accuracy").
    int64_t n = 0, ok = 0;
    for (const char* f : {"before", "after"})
      if (auto it = per_form.find(f); it != per_form.end()) n += it->second[0], ok += it->second[1];
    reasoning["accuracy_before_after"] = rate(ok, n);
  }
  if (!reasoning_sets.empty()) {
    const auto cs = caption_scores(reasoning_sets, o.captions);
    reasoning["bleu_4"] = value(cs.bleu[3]);
    reasoning["rouge_l"] = value(cs.rouge_l);
    if (cs.meteor) reasoning["meteor"] = value(*cs.meteor);
    else j["meteor_note"] = cs.meteor_note;
  }
  ojson story = {{"valid_next_rate", rate(story_valid, story_n)}, {"exact_next_rate", rate(story_exact, story_n)}};
  // Rows of the tasks the split holds (a reasoning-only set has no editing rows, not rows of zeros).
  j["rows"] = ojson::object();
  if (edit_n > 0) {
    j["rows"]["editing"] = editing;
    j["rows"]["source_unedited"] = source;
    j["rows"]["source_tokenized"] = copy;
    j["rows"]["edited_tokenized"] = truth_tok;
    j["rows"]["edited_true"] = truth;  // made with the embeddings of every editing case
  }
  if (reason_n > 0) j["rows"]["reasoning"] = reasoning;
  if (story_n > 0) j["rows"]["story"] = story;
  // Per-kind and per-form shares (no interval: the counts beside them).
  auto share = [](int64_t hits, int64_t n) { return static_cast<double>(hits) / static_cast<double>(std::max<int64_t>(1, n)); };
  ojson pe = ojson::object();
  for (const auto& [k, v] : per_edit) {
    pe[k] = {{"cases", v[0]}, {"closer_than_source_rate", share(v[1], v[0])}, {"closer_than_copy_rate", share(v[3], v[0])},
             {"edited_tokenized_closer_than_source_rate", share(v[4], v[0])}, {"no_motion", v[2]}};
    // Caption preference per kind: of the model's motions, of the tokenized and of the true edited scenes.
    for (const auto& [name, m] : {std::make_pair("caption_preferred_rate", &pref_gen),
                                  std::make_pair("edited_tokenized_caption_preferred_rate", &pref_tok),
                                  std::make_pair("edited_true_caption_preferred_rate", &pref_true)})
      if (auto it = m->find(k); it != m->end()) pe[k][name] = share(it->second[0], it->second[1]);
    if (auto it = pref_true.find(k); it != pref_true.end()) pe[k]["caption_preference_cases"] = it->second[1];
  }
  j["per_edit"] = pe;
  ojson pf = ojson::object();
  for (const auto& [k, v] : per_form) pf[k] = {{"cases", v[0]}, {"accuracy", share(v[1], v[0])}};
  j["per_reasoning_form"] = pf;
  j["counts"] = {{"editing", edit_n}, {"editing_without_motion", no_motion}, {"reasoning", reason_n}, {"story", story_n},
                 {"dropped_turns", dropped}};
  j["generation_seconds"] = gen_s;
  j["definitions"] = {
      {"closer_than_source_rate", "share of editing cases whose generated motion has a lower MPJPE to the true edited scene "
                                  "than the unedited source has (a case without a generated motion counts as a miss)"},
      {"closer_than_copy_rate", "the same against the source passed through the run's tokenizer (source_tokenized): the "
                                "answer of a model that returns the source unchanged"},
      {"mpjpe_mm", "22 joints, both persons, metres -> mm, each clip in its pair's canonical frame, frames both have"},
      {"caption_preferred_rate", "the evaluator puts the generated motion nearer the edited caption than the source caption "
                                 "(cases whose captions differ)"},
      {"accuracy", "the first interaction the answer names is the true one (every question form: before, after, why, "
                   "show_before)"},
      {"accuracy_before_after", "the same over the before and after questions only"},
      {"edited_tokenized", "the true edited scene passed through the run's tokenizer at the LM's levels: the best a "
                           "tokenized answer can be, so its rates bound the editing row's"},
      {"edited_true", "the true edited scene itself: how often the evaluator tells the edited caption from the source "
                      "caption on real motion, the bound of caption_preferred_rate"},
      {"valid_next_rate", "story: the first interaction named in the answer after the first scene is one the scripted "
                          "sequences allow next"}};
  const std::string out = o.out.empty() ? (fs::path(o.run) / "eval" / ("instruct_" + o.split + ".json")).string() : o.out;
  fs::create_directories(fs::path(out).parent_path());
  // Every answer beside the scores (text, and the motion block it opened), to read what the model said.
  std::string lines;
  for (size_t i = 0; i < cases.size(); ++i) {
    ojson m = ojson::array();
    for (const auto& sg : answers[i].segments)
      if (sg.kind != text::Segment::Kind::kText) m.push_back(static_cast<int64_t>(sg.codes.size()));
    lines += ojson{{"id", cases[i].rec->id}, {"task", cases[i].rec->task}, {"expected", cases[i].rec->turns[cases[i].answer].text},
                   {"answer", vim::turn_text(answers[i])}, {"motion_codes", m}}.dump() + "\n";
  }
  fs::path answers_file(out);
  answers_file.replace_extension(".answers.jsonl");
  core::write_file_atomic(answers_file.string(), lines);
  write_protocol_report(out, j);
  return j;
}

}  // namespace vimo::eval

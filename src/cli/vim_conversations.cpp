// `vimo data conversations`: synthesize Inter-MT2-style conversations with their clips, check a
// conversation file against a token cache, or convert instruction triples (docs/conversations.md).
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/data/conversation_synth.h"
#include "vimo/data/conversations.h"
#include "vimo/data/token_cache.h"
#include "vimo/text/chat.h"
#include "vimo/text/vocab.h"
#include "vimo/vim/batches.h"
#include "vimo/vim/dialogue.h"
#include "vimo/vim/model.h"

namespace fs = std::filesystem;

namespace vimo::cli {
namespace {

struct ConvArgs {
  std::string check, triples, out, tokens, prefix = "triple_", run, render_out, synthetic;
  int64_t max_length = 0;
  data::SynthConversationOptions synth;
};

// The clips of every split of a token-cache directory, by id.
vim::ClipLookup clip_lookup(const std::string& dir) {
  auto caches = std::make_shared<std::vector<data::TokenCache>>();
  for (const char* s : {"train", "val", "test"}) {
    const auto p = fs::path(dir) / (std::string(s) + ".h5");
    if (fs::exists(p)) caches->push_back(data::TokenCache::open(p.string()));
  }
  VIMO_CHECK(!caches->empty(), "--tokens '" + dir + "' holds no train.h5, val.h5 or test.h5 (make it with `vimo tokenizer encode`)");
  return [caches](const std::string& id) -> std::optional<data::TokenClip> {
    for (const auto& c : *caches)
      if (auto i = c.find(id)) return c.clip(*i);
    return std::nullopt;
  };
}

// Renders every conversation with an LM run's vocabulary and chat template (its lm/ folder only, no
// weights): token counts, and the oldest exchanges dropped to fit max_length.
void render_all(const ConvArgs& a, const std::vector<data::ConversationRecord>& rs, const vim::ClipLookup& clips) {
  const fs::path lm = fs::path(a.run) / "lm";
  VIMO_CHECK(fs::exists(lm / "vim.json") && fs::exists(lm / "vocab.json"),
             "--run '" + a.run + "' has no lm/vim.json and lm/vocab.json; name a run made by `vimo pretrain`");
  const auto spec = vim::ModelSpec::from_json(nlohmann::json::parse(core::read_file((lm / "vim.json").string())),
                                              (lm / "vim.json").string());
  const auto text = text::load_text_tokenizer((lm / spec.text_file).string());
  const auto vocab = text::UnifiedVocab::load((lm / "vocab.json").string());
  const text::ChatTemplate chat(vocab, *text);
  const int64_t max_length = a.max_length > 0 ? a.max_length : std::numeric_limits<int64_t>::max();
  std::string lines;
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0, total = 0, shortened = 0, dropped = 0, skipped = 0;
  for (const auto& r : rs) {
    auto conv = vim::build_dialogue(r, clips, spec.layers);
    auto full = vim::render_sequence(chat, conv, 0, spec.depth_head());
    const int64_t n = static_cast<int64_t>(full.ids.size());
    lo = std::min(lo, n), hi = std::max(hi, n), total += n;
    // Only a conversation longer than max_length is fitted (rendered again without its oldest exchanges).
    const auto fit = n <= max_length ? std::optional<vim::FittedDialogue>(vim::FittedDialogue{std::move(full), 0})
                                     : vim::fit_dialogue(chat, std::move(conv), max_length, 0, spec.depth_head());
    nlohmann::json j = {{"id", r.id}, {"tokens", n}};
    if (!fit) {
      ++skipped;
      j["fits"] = false;
    } else {
      shortened += fit->dropped_turns > 0, dropped += fit->dropped_turns;
      int64_t targets = 0;
      for (auto t : fit->seq.targets) targets += t >= 0;
      j["fits"] = true;
      j["dropped_turns"] = fit->dropped_turns;
      j["ids"] = fit->seq.ids;
      j["loss_tokens"] = targets;
    }
    lines += j.dump() + "\n";
  }
  std::cout << "rendered with " << a.run << " (" << spec.layers << " motion level" << (spec.layers == 1 ? "" : "s")
            << "): tokens " << lo << ".." << hi << ", mean " << total / static_cast<int64_t>(rs.size());
  if (a.max_length > 0)
    std::cout << "; with max length " << a.max_length << ": " << shortened << " shortened (" << dropped
              << " oldest turns dropped), " << skipped << " too long even as their last exchange";
  std::cout << "\n";
  if (!a.render_out.empty()) core::write_file_atomic(a.render_out, lines);
}

void summary(const std::vector<data::ConversationRecord>& rs) {
  std::map<std::string, int64_t> per_task;
  int64_t turns = 0, motions = 0;
  for (const auto& r : rs) {
    ++per_task[r.task];
    turns += static_cast<int64_t>(r.turns.size());
    for (const auto& t : r.turns) motions += !t.motion.empty();
  }
  std::cout << rs.size() << " conversations, " << turns << " turns, " << motions << " motion turns;";
  for (const auto& [t, n] : per_task) std::cout << " " << t << " " << n;
  std::cout << "\n";
}

Registrar reg(23, [](CLI::App& app) {
  auto* g = group(app, "data", "datasets: synthetic data, packing into HDF5, inspection");
  auto a = std::make_shared<ConvArgs>();
  auto* c = g->add_subcommand("conversations", "stage-3 conversations (JSONL): synthesize them, check a file, or convert instruction triples");
  auto* chk = c->add_option("--check", a->check, "conversation file to check, line by line (.jsonl)");
  auto* tri = c->add_option("--from-triples", a->triples,
                            "instruction triples (JSONL or tab-separated: instruction, source caption, target caption "
                            "[, source clip, target clip]) to convert");
  auto* syn = c->add_option("--synthetic", a->synthetic,
                            "synthesize conversations: the InterHuman dataset root that receives their clips (with --out DIR)");
  chk->excludes(tri);
  syn->excludes(chk)->excludes(tri);
  c->add_option("--count", a->synth.count, "--synthetic: conversations to make")->check(CLI::Range(1, 100000000));
  c->add_option("--seed", a->synth.seed, "--synthetic: random seed; the same seed makes the same conversations and clips");
  c->add_option("--task-weights", a->synth.task_weights, "--synthetic: editing reasoning story shares (default Inter-MT2's 0.42 0.17 0.41)")
      ->expected(3);
  c->add_option("--threads", a->synth.threads, "--synthetic: worker threads (0: all cores)");
  c->add_option("--out", a->out, "--from-triples: the conversation file to write (.jsonl); --synthetic: the directory of "
                                  "{train,val,test}.jsonl and meta.json");
  c->add_option("--tokens", a->tokens, "token-cache directory whose clips the motion ids must name");
  c->add_option("--id-prefix", a->prefix, "--from-triples: prefix of the ids of triples without one (+ line number)");
  c->add_option("--run", a->run, "--check: also render every conversation with this LM run's chat template (needs --tokens)");
  c->add_option("--max-length", a->max_length, "--run: the context length; longer conversations lose their oldest exchanges");
  c->add_option("--render-out", a->render_out, "--run: write per conversation {id, tokens, fits, dropped_turns, ids, loss_tokens} (JSONL)");
  c->callback([a] {
    if (!a->synthetic.empty()) {
      VIMO_CHECK(!a->out.empty(), "--synthetic DIR needs --out DIR (where {train,val,test}.jsonl are written)");
      a->synth.clips_root = a->synthetic;
      a->synth.out = a->out;
      const auto r = data::write_synth_conversations(a->synth);
      std::cout << "wrote " << r.conversations << " conversations (" << r.turns << " turns) to " << a->out << " and " << r.clips
                << " clips to " << a->synthetic << " in " << r.seconds << " s;";
      for (const auto& [t, n] : r.per_task) std::cout << " " << t << " " << n;
      std::cout << "; edits:";
      for (const auto& [t, n] : r.per_edit) std::cout << " " << t << " " << n;
      std::cout << "\n";
      return;
    }
    VIMO_CHECK(!a->check.empty() || !a->triples.empty(),
               "give --synthetic DIR --out DIR, --check FILE.jsonl or --from-triples FILE --out FILE.jsonl");
    const auto clips = a->tokens.empty() ? vim::ClipLookup() : clip_lookup(a->tokens);
    const auto known = clips ? std::function<bool(const std::string&)>([clips](const std::string& id) {
      return clips(id).has_value();
    })
                             : std::function<bool(const std::string&)>();
    VIMO_CHECK(a->run.empty() || (!a->check.empty() && clips), "--run renders the conversations of --check FILE and needs "
                                                               "--tokens DIR (the token cache their motions are in)");
    if (!a->check.empty()) {
      const auto rs = data::read_conversations(a->check, known);
      std::cout << a->check << ": ";
      summary(rs);
      if (!a->run.empty()) render_all(*a, rs, clips);
      return;
    }
    VIMO_CHECK(!a->out.empty(), "--from-triples needs --out FILE.jsonl");
    const auto rs = data::conversations_from_triples(a->triples, a->prefix);
    if (known)
      for (const auto& r : rs)
        for (const auto& t : r.turns)
          VIMO_CHECK(t.motion.empty() || known(t.motion), "triple '" + r.id + "' in '" + a->triples + "' names clip '" +
                                                              t.motion + "', which is not in --tokens " + a->tokens);
    data::write_conversations(a->out, rs);
    std::cout << "wrote " << a->out << ": ";
    summary(rs);
  });
});

}  // namespace
}  // namespace vimo::cli

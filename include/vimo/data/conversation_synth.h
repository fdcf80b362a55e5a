// Synthetic Inter-MT2: multi-turn conversations (editing, reasoning, story) in which every motion turn
// is a clip made by the synthetic interaction generator, so each assistant motion has its ground
// truth: the edited scene, the earlier or the later scene of a scripted sequence.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vimo::data {

struct SynthConversationOptions {
  std::string clips_root;  // InterHuman root receiving the clips (motions_processed/, annots/, split/)
  std::string out;         // directory of {train,val,test}.jsonl and meta.json
  int64_t count = 1000;    // conversations
  uint64_t seed = 0;
  // editing, reasoning, story: Inter-MT2's mix (~42% / 17% / 42%, arXiv 2410.05628 Sec. 3).
  std::vector<double> task_weights = {0.42, 0.17, 0.41};
  double val_fraction = 0.05, test_fraction = 0.15;
  int threads = 0;  // 0: all hardware threads
};

struct SynthConversationReport {
  int64_t conversations = 0, clips = 0, turns = 0;
  std::map<std::string, int64_t> per_task;  // editing, reasoning, story
  std::map<std::string, int64_t> per_edit;  // type, hand, speed, initiator
  double seconds = 0;
};

// Writes the clips into clips_root (ids "conv<n>_<part>", added to its split lists; a rerun with the
// same seed skips clips whose files exist) and <out>/{train,val,test}.jsonl with <out>/meta.json:
// per conversation its split, task, edit kind, the scene types and the true clips of its answers.
SynthConversationReport write_synth_conversations(const SynthConversationOptions& o);

// The interaction types (synth type names) a text names, by keywords ("shook hands" -> handshake).
std::vector<std::string> named_interactions(const std::string& text);

// The scene types that may follow `type` in the scripted sequences (reasoning and story).
std::vector<std::string> next_interactions(const std::string& type);

}  // namespace vimo::data

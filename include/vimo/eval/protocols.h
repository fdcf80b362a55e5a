// Evaluation protocols over an evaluator and a packed split: the ground-truth row (real motions
// against their own captions, as InterGen computes it) with a shuffled-caption control, and the JSON
// layout every protocol writes.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vimo/data/packed.h"
#include "vimo/eval/evaluator.h"
#include "vimo/eval/metric_protocol.h"
#include "vimo/vim/model.h"

namespace vimo::eval {

// Clips of a split with every caption, normalized by the evaluator's statistics.
struct CaptionedSplit {
  std::vector<std::string> ids;
  std::vector<torch::Tensor> clips;                // normalized [T, P, F]
  std::vector<std::vector<std::string>> captions;  // at least one each
};
// Clips without a caption are left out (and counted in the log). The evaluator must carry
// statistics (a trained run) or `norm` must be given.
CaptionedSplit load_captioned_split(const data::PackedDataset& ds, const LoadedEvaluator& ev);

// Text embeddings [R, N, D]: in replication r, clip i's caption is drawn uniformly from its captions by
// core::derive_seed(seed, "CAPDRAW", r * N + i) (InterGen's loader picks a random caption per clip).
torch::Tensor replicated_caption_embeddings(LoadedEvaluator& ev, const CaptionedSplit& s, int64_t replications,
                                            int64_t seed);

// `p` with its Diversity draws cut below the pairs scored (full batches of n) and its MultiModality
// draws to the `mm_k` generations per text, with a warning: InterGen's 300 need at least 300 pairs.
MetricProtocol fit_protocol(const MetricProtocol& p, int64_t n, int64_t mm_k = 0);

// {"task", "split", "protocol", "replications", "rows": {row: {metric: {"mean", "ci95"}}}}.
nlohmann::ordered_json protocol_json(const std::string& task, const std::string& split, const MetricProtocol& p,
                                     int64_t replications);
// The summary of `runs` as one row of protocol_json.
nlohmann::ordered_json protocol_row(const MetricProtocol& p, const std::vector<ReplicationScores>& runs);

// The ground-truth row ("gt": real motions and their captions; FID of real against real) and the
// control row ("shuffled": the same captions assigned to other clips, R-precision near k/batch).
nlohmann::ordered_json evaluate_ground_truth(LoadedEvaluator& ev, const CaptionedSplit& s, const std::string& split,
                                             const MetricProtocol& p, int64_t replications, int64_t seed);

// The layout of the paper's Tables 2-4 for runs evaluated on `split`: per task (t2m, m2t, reaction)
// whose <run>/eval/<task>_<split>.json exists, the GT row (of the first run that has it) then one row
// per run ("mean ± ci95"), written to <out>/<task>_<split>.{md,json,tex}. Returns the markdown.
std::string write_tables(const std::vector<std::string>& runs, const std::string& split, const std::string& out_dir);

// The key of cached_batches for `n` generations of `what` by LM run `run` in batches of `rows`: the
// run's checkpoint (relative to the run, so the run may be moved) and its write time, and every
// sampling setting.
std::string sample_key(const std::string& run, const std::string& what, const vim::GenerateSettings& g, size_t n,
                       int64_t rows);

// Generation for a protocol, batch by batch, kept on disk so a killed evaluation continues where it
// stopped: items [b*rows, min(n, (b+1)*rows)) are made by `make(begin, end)` (a JSON array of end-begin
// items) and written to <dir>/batch_<b>.json when done; a rerun whose `key` is the one in
// <dir>/key.json reuses every complete batch (another key clears `dir` first). `use(i, item)` gets
// every item in order, made or reused.
void cached_batches(const std::filesystem::path& dir, const std::string& key, int64_t n, int64_t rows,
                    const std::string& label, const std::function<nlohmann::json(int64_t, int64_t)>& make,
                    const std::function<void(int64_t, const nlohmann::json&)>& use);

// A markdown table of a protocol JSON: one row per entry of "rows", "mean ± ci95" per metric.
std::string protocol_markdown(const nlohmann::ordered_json& j);

// Writes `j` to `json_path` and its protocol_markdown beside it (.md), each atomically, and logs both.
void write_protocol_report(const std::string& json_path, const nlohmann::ordered_json& j);

}  // namespace vimo::eval

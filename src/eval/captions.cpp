// Caption files (refs/hyps JSON) with their checks, and caption_scores: tokenize, then every metric.
#include "vimo/eval/captions.h"

#include <nlohmann/json.hpp>
#include <set>

#include "coco_text.h"
#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/eval/ptb_tokenizer.h"

namespace vimo::eval {
namespace {

using ordered_json = nlohmann::ordered_json;

ordered_json read_object(const std::string& path, const char* what) {
  ordered_json j;
  try {
    j = ordered_json::parse(core::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string(what) + " file '" + path + "' is not valid JSON: " + e.what());
  }
  VIMO_CHECK(j.is_object(), std::string(what) + " file '" + path + "' must be a JSON object mapping each id to " +
                                (std::string(what) == "refs" ? "a list of reference strings" : "one caption string"));
  VIMO_CHECK(!j.empty(), std::string(what) + " file '" + path + "' has no ids");
  return j;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos; }

std::string caption(const ordered_json& v, const std::string& path, const std::string& id, const char* what) {
  VIMO_CHECK(v.is_string(), std::string(what) + " file '" + path + "': id '" + id + "' has a " + v.type_name() +
                                " where a caption string belongs");
  const auto s = v.get<std::string>();
  VIMO_CHECK(!blank(s), std::string(what) + " file '" + path + "': id '" + id +
                            "' has an empty caption; remove it or give it text");
  return s;
}

std::string some_ids(const std::vector<std::string>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size() && i < 5; ++i) s += (i ? ", '" : "'") + ids[i] + "'";
  return ids.size() > 5 ? s + " and " + std::to_string(ids.size() - 5) + " more" : s;
}

}  // namespace

std::vector<CaptionSet> load_caption_sets(const std::string& refs_path, const std::string& hyps_path) {
  const auto refs = read_object(refs_path, "refs"), hyps = read_object(hyps_path, "hyps");
  std::vector<std::string> only_refs, only_hyps;
  for (const auto& [id, v] : refs.items())
    if (!hyps.contains(id)) only_refs.push_back(id);
  for (const auto& [id, v] : hyps.items())
    if (!refs.contains(id)) only_hyps.push_back(id);
  VIMO_CHECK(only_refs.empty() && only_hyps.empty(),
             "refs '" + refs_path + "' and hyps '" + hyps_path + "' must have the same ids: " +
                 (only_refs.empty() ? "" : "only in refs: " + some_ids(only_refs) + "; ") +
                 (only_hyps.empty() ? "" : "only in hyps: " + some_ids(only_hyps) + "; ") + "score matching files");
  std::vector<CaptionSet> sets;
  for (const auto& [id, v] : refs.items()) {
    CaptionSet s;
    s.id = id;
    VIMO_CHECK(v.is_array() && !v.empty(),
               "refs file '" + refs_path + "': id '" + id + "' must map to a non-empty list of reference strings");
    for (const auto& r : v) s.refs.push_back(caption(r, refs_path, id, "refs"));
    const auto& h = hyps.at(id);
    VIMO_CHECK(h.is_string() || (h.is_array() && h.size() == 1),
               "hyps file '" + hyps_path + "': id '" + id + "' must map to one caption string");
    s.hyp = caption(h.is_array() ? h[0] : h, hyps_path, id, "hyps");
    sets.push_back(std::move(s));
  }
  return sets;
}

CaptionScores caption_scores(const std::vector<CaptionSet>& sets, const CaptionOptions& o) {
  VIMO_CHECK(o.tokenizer == "builtin" || o.tokenizer == "stanford",
             "caption tokenizer '" + o.tokenizer + "' is unknown; use builtin or stanford");
  VIMO_CHECK(o.meteor == "auto" || o.meteor == "on" || o.meteor == "off",
             "meteor setting '" + o.meteor + "' is unknown; use auto, on or off");
  VIMO_CHECK(!sets.empty(), "caption_scores: no caption sets");
  std::vector<std::string> refs, hyps;
  for (const auto& s : sets) {
    VIMO_CHECK(!s.refs.empty(), "caption_scores: id '" + s.id + "' has no references");
    refs.insert(refs.end(), s.refs.begin(), s.refs.end());
    hyps.push_back(s.hyp);
  }
  CaptionScores out;
  out.sets = sets.size();
  std::string meteor_jar;  // found before the work starts, so --meteor on fails at once
  if (o.meteor != "off") {
    meteor_jar = find_pycocoevalcap_jar(o.meteor_jar, "VIMO_METEOR_JAR", "meteor/meteor-1.5.jar");
    const std::string why = find_java().empty() ? "no java on PATH (install default-jre-headless, scripts/setup.sh)"
                            : meteor_jar.empty()
                                ? "meteor-1.5.jar not found (pass --meteor-jar, set VIMO_METEOR_JAR or install "
                                  "pycocoevalcap in the venv)"
                                : "";
    VIMO_CHECK(why.empty() || o.meteor != "on", "--meteor on, but METEOR cannot run: " + why);
    if (!why.empty()) out.meteor_note = "METEOR skipped: " + why, meteor_jar.clear();
  }
  std::vector<std::string> tr, th;
  if (o.tokenizer == "stanford") {
    const auto jar = find_pycocoevalcap_jar(o.corenlp_jar, "VIMO_CORENLP_JAR", "tokenizer/stanford-corenlp-3.4.1.jar");
    VIMO_CHECK(!jar.empty(),
               "--tokenizer stanford: stanford-corenlp-3.4.1.jar not found; pass --corenlp-jar, set "
               "VIMO_CORENLP_JAR or install pycocoevalcap in the venv (scripts/setup.sh)");
    tr = coco_tokenize_stanford(refs, jar), th = coco_tokenize_stanford(hyps, jar);
    out.tokenizer = "stanford-corenlp-3.4.1 (" + jar + ")";
  } else {
    tr = coco_tokenize(refs), th = coco_tokenize(hyps);
    out.tokenizer = "vimo builtin PTB (CoreNLP 3.4.1 rules)";
  }
  std::vector<TokenizedSet> tok(sets.size());
  for (size_t i = 0, k = 0; i < sets.size(); ++i) {
    tok[i].hyp = th[i];
    for (size_t r = 0; r < sets[i].refs.size(); ++r) tok[i].refs.push_back(tr[k++]);
  }
  out.bleu = bleu(tok);
  out.rouge_l = rouge_l(tok);
  out.cider_d = cider_d(tok);
  if (!meteor_jar.empty()) out.meteor = meteor(tok, meteor_jar);
  return out;
}

}  // namespace vimo::eval

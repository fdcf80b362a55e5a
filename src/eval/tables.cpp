// `vimo eval tables`: the protocol JSONs of several runs side by side in the paper's layout
// (GT row first, one row per run, mean ± CI) as markdown, JSON and LaTeX.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/eval/protocols.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace vimo::eval {
namespace {

// Columns per task, in the paper's order; metrics a run lacks print as "-".
const std::vector<std::pair<std::string, std::vector<std::string>>>& task_columns() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> c = {
      {"t2m", {"r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity", "multimodality"}},
      {"m2t", {"r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "bleu_1", "bleu_4", "rouge_l",
               "cider", "meteor"}},
      {"reaction", {"mpjpe_mm", "fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist",
                    "diversity"}}};
  return c;
}

std::string cell(const ojson& row, const std::string& k, bool latex) {
  if (!row.contains(k)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, latex ? "%.3f$^{\\pm %.3f}$" : "%.3f ± %.3f", row[k].value("mean", 0.0),
                row[k].value("ci95", 0.0));
  return buf;
}

std::string latex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '&' || c == '%' || c == '#') o += '\\';
    o += c;
  }
  return o;
}

}  // namespace

std::string write_tables(const std::vector<std::string>& runs, const std::string& split, const std::string& out_dir) {
  VIMO_CHECK(!runs.empty(), "eval tables: name at least one run (--runs DIR ...)");
  fs::create_directories(out_dir);
  std::string all_md;
  for (const auto& [task, cols] : task_columns()) {
    std::vector<std::pair<std::string, ojson>> rows;
    ojson gt;
    for (const auto& run : runs) {
      const fs::path f = fs::path(run) / "eval" / (task + "_" + split + ".json");
      if (!fs::exists(f)) continue;
      ojson j;
      try {
        j = ojson::parse(core::read_file(f.string()));
      } catch (const std::exception& e) {
        throw Error("'" + f.string() + "' is not JSON (" + e.what() + "); rerun `vimo eval " + task + "`");
      }
      VIMO_CHECK(j.contains("rows") && j["rows"].contains("model"),
                 "'" + f.string() + "' has no rows.model; rerun `vimo eval " + task + "`");
      if (gt.is_null() && j["rows"].contains("gt")) gt = j["rows"]["gt"];
      std::string name = fs::path(run).filename().string();
      if (name.empty()) name = fs::path(run).parent_path().filename().string();
      rows.emplace_back(name, j["rows"]["model"]);
    }
    if (rows.empty()) continue;
    if (!gt.is_null()) rows.insert(rows.begin(), {"Ground truth", gt});
    std::ostringstream md, tex;
    ojson js = {{"task", task}, {"split", split}, {"columns", cols}, {"rows", ojson::array()}};
    md << "### " << task << " (" << split << ")\n\n| method |";
    for (const auto& c : cols) md << " " << c << " |";
    md << "\n|---|";
    for (size_t i = 0; i < cols.size(); ++i) md << "---|";
    md << "\n";
    tex << "\\begin{tabular}{l" << std::string(cols.size(), 'c') << "}\n\\toprule\nMethod";
    for (const auto& c : cols) tex << " & " << latex_escape(c);
    tex << " \\\\\n\\midrule\n";
    for (const auto& [name, row] : rows) {
      md << "| " << name << " |";
      tex << latex_escape(name);
      ojson jr = {{"name", name}};
      for (const auto& c : cols) {
        md << " " << cell(row, c, false) << " |";
        tex << " & " << cell(row, c, true);
        if (row.contains(c)) jr[c] = row[c];
      }
      md << "\n";
      tex << " \\\\\n";
      js["rows"].push_back(jr);
    }
    tex << "\\bottomrule\n\\end{tabular}\n";
    const fs::path base = fs::path(out_dir) / (task + "_" + split);
    core::write_file_atomic(base.string() + ".md", md.str());
    core::write_file_atomic(base.string() + ".tex", tex.str());
    core::write_file_atomic(base.string() + ".json", js.dump(2) + "\n");
    all_md += md.str() + "\n";
  }
  VIMO_CHECK(!all_md.empty(), "eval tables: none of the runs has eval/<task>_" + split +
                                  ".json; run `vimo eval t2m|m2t|reaction --run DIR --evaluator EV` first");
  return all_md;
}

}  // namespace vimo::eval

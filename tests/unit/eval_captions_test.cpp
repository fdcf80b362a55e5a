// Caption metrics and the PTB tokenizer against hand-computed values and the Stanford jar's outputs
// recorded by hand; caption file errors.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "vimo/core/error.h"
#include "vimo/eval/captions.h"
#include "vimo/eval/ptb_tokenizer.h"

using namespace vimo::eval;

namespace {

std::vector<TokenizedSet> one(const std::string& hyp, std::vector<std::string> refs) {
  return {TokenizedSet{std::move(refs), hyp}};
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string error_of(const std::string& refs, const std::string& hyps) {
  write("eval_test_refs.json", refs);
  write("eval_test_hyps.json", hyps);
  try {
    load_caption_sets("eval_test_refs.json", "eval_test_hyps.json");
  } catch (const vimo::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(EvalCaptions, BleuIsCorpusLevelWithTheBrevityPenalty) {
  const auto same = bleu(one("a b c d", {"a b c d"}));
  for (double b : same) EXPECT_NEAR(b, 1.0, 1e-9);
  const auto shortened = bleu(one("a b", {"a b c d"}));  // p1 = 1, length ratio 1/2
  EXPECT_NEAR(shortened[0], std::exp(-1.0), 1e-9);
  // Closest reference length: 3 ("x y z") beats 6, so no penalty for a 3-word hypothesis.
  EXPECT_NEAR(bleu(one("a b c", {"a b c d e f", "x y z"}))[0], 1.0, 1e-9);
}

TEST(EvalCaptions, RougeLUsesTheBestPrecisionAndRecallWithBeta12) {
  // LCS("a c d e", "a b c") = 2: P = 2/3, R = 1/2.
  const double p = 2.0 / 3, r = 0.5, b2 = 1.44;
  EXPECT_NEAR(rouge_l(one("a b c", {"a c d e"})), (1 + b2) * p * r / (r + b2 * p), 1e-12);
  EXPECT_NEAR(rouge_l(one("q", {"a b"})), 0.0, 1e-12);
}

TEST(EvalCaptions, CiderDOfPerfectHypothesesOverTwoSets) {
  // idf = log 2 for every n-gram; orders 1 and 2 have cosine 1, orders 3 and 4 are empty: 10 * 2/4.
  std::vector<TokenizedSet> sets = {{{"a b"}, "a b"}, {{"c d"}, "c d"}};
  EXPECT_NEAR(cider_d(sets), 5.0, 1e-12);
  EXPECT_NEAR(cider_d(one("a b", {"a b"})), 0.0, 1e-12);  // one set: log(1) = 0 weights
}

TEST(EvalCaptions, PtbTokenizationMatchesTheJarOnRecordedCases) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"A man walks forward, then turns LEFT.", "a man walks forward then turns left"},
      {"The person's arm isn't raised... it's \"lowered\" (slowly).",
       "the person 's arm is n't raised it 's lowered -lrb- slowly -rrb-"},
      {"He can't won't don't I'm we'll y'all o'clock", "he ca n't wo n't do n't i 'm we 'll y' all o'clock"},
      {"3.5 meters, 1,000 steps, 10:30 am, $5.00, 50%", "3.5 meters 1,000 steps 10:30 am $ 5.00 50 %"},
      {"“Quoted” ‘single’ — dash … ellipsis", "quoted single dash ellipsis"},
      {"gonna wanna cannot 'tis", "gon na wan na can not 't is"},
      {"[x] {y} <b>bold</b> :) U.S.A. Mr. Smith", "-lsb- x -rsb- -lcb- y -rcb- <b> bold </b> :-rrb- u.s.a. mr. smith"},
      {"Café ΟΔΟΣ İ 日本語 😀 ok", "café οδος i\u0307 日本語 ok"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(coco_tokenize({in})[0], want) << in;
  EXPECT_EQ(coco_tokenize({"3 1/2 turns"})[0], "3\u00A01/2 turns");
  // A caption's last token depends on the next line, as in the reference: "A." ends a sentence
  // before an upper-case letter and is split.
  EXPECT_EQ(coco_tokenize({"plan A.", "The end"})[0], "plan a");
  EXPECT_EQ(coco_tokenize({"plan A.", "the end"})[0], "plan a.");
}

TEST(EvalCaptions, CaptionFileErrorsNameTheIdAndTheFix) {
  EXPECT_NE(error_of(R"({"a": ["x"], "b": ["y"]})", R"({"a": "x", "c": "z"})").find("only in refs: 'b'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"a": ["x", "  "]})", R"({"a": "x"})").find("id 'a' has an empty caption"), std::string::npos);
  EXPECT_NE(error_of(R"({"a": []})", R"({"a": "x"})").find("non-empty list"), std::string::npos);
  EXPECT_NE(error_of(R"({"a": ["x"]})", R"({"a": 3})").find("one caption string"), std::string::npos);
  EXPECT_NE(error_of(R"(["x"])", R"({"a": "x"})").find("must be a JSON object"), std::string::npos);
  EXPECT_EQ(error_of(R"({"a": ["x", "y"]})", R"({"a": ["z"]})"), "");
}

// The PTBLexer rule table: patterns (with optional trailing context r/s) in the lexer's priority
// order and what each does with its match. Internal to the PTB tokenizer.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "ptb_pattern.h"

namespace vimo::eval::ptb {

enum class Act {
  kRaw,          // the matched text
  kSoftHyphen,   // the matched text without U+00AD
  kQuoteLeft,    // latexQuotes(text, probablyLeft = true)
  kQuoteRight,   // latexQuotes(text, probablyLeft = false)
  kFixed,        // Rule::fixed
  kAmp,          // "&amp;" -> "&"
  kSpaceToNbsp,  // fractions and SGML tags: spaces inside become U+00A0
  kFraction,     // vulgar fraction characters spelled out ("1/2")
  kCurrency,     // cent -> "cents", pound -> "#", euro and the like -> "$"
  kAcronymEnd,   // acronym before a sentence end: emit it, then lex its final period again
  kAbbrevEnd,    // ABBREV1 before a sentence end: the same, with no single-letter case
  kPhone,        // spaces -> U+00A0, parentheses -> -LRB- / -RRB-
  kSmiley,       // parentheses -> -LRB- / -RRB-
  kHyphens,      // 3 or 4 hyphens -> "--"
  kPushback,     // emit all but the last Rule::pushback characters, lex those again
  kSkip,         // whitespace, ignorable and untokenizable characters
  kNewline,      // ends the output line
};

struct Rule {
  Pat pattern;
  std::optional<Pat> context;  // r/s: s must follow, and counts towards the longest match
  Act act = Act::kRaw;
  std::u32string fixed;
  int pushback = 0;
  std::array<bool, 128> ascii_start{};  // pattern.may_start for ASCII, precomputed
};

const std::vector<Rule>& rules();

// latexQuotes of PTBLexer: ASCII and typographic quotes to ` `` ' ''.
std::u32string latex_quotes(const std::u32string& in, bool probably_left);

}  // namespace vimo::eval::ptb

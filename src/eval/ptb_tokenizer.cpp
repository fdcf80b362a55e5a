// The PTB scanner loop (longest match over the rule table, earlier rule on ties, trailing context
// counted as JFlex counts it), the token rewrites, and pycocoevalcap's line handling.
#include "vimo/eval/ptb_tokenizer.h"

#include <algorithm>
#include <array>
#include <utility>

#include "coco_text.h"
#include "ptb_chars.h"
#include "ptb_rules.h"
#include "vimo/core/error.h"

namespace vimo::eval {
namespace {

using ptb::Act;

// pycocoevalcap's PUNCTUATIONS; compared after lower-casing, so its -LRB- etc. never match.
const std::array<std::string, 17> kPunctuations = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".",
                                                   "?",  "!", ",",  ":", "-",     "--",    "...",   ";"};

struct Match {
  size_t rule = 0;
  uint32_t total = 0;  // end of the match including trailing context (decides the rule)
  uint32_t token = 0;  // end of the token itself
};

// Longest match at `i` over all rules; total == 0 when none matches.
Match best_match(const std::u32string& s, uint32_t i) {
  Match best;
  const auto& rules = ptb::rules();
  ptb::Ends ends;
  for (size_t k = 0; k < rules.size(); ++k) {
    const auto& r = rules[k];
    const char32_t c = s[i];
    if (c < 128 ? !r.ascii_start[c] : !r.pattern.may_start(c)) continue;
    Match m{k, 0, 0};
    if (!r.context) {
      m.total = m.token = r.pattern.longest(s, i);
    } else {
      ends.clear();
      r.pattern.ends(s, i, ends);
      for (uint32_t e : ends) {
        const uint32_t t = r.context->longest(s, e);
        if (t > m.total || (t == m.total && t > 0 && e > m.token)) m.total = t, m.token = e;
      }
    }
    if (m.total > best.total) best = m;
  }
  return best;
}

std::u32string replace_chars(const std::u32string& s, char32_t from, const std::u32string& to) {
  std::u32string out;
  for (char32_t c : s) c == from ? out += to : out += c;
  return out;
}

std::u32string without_soft_hyphens(std::u32string s) {
  s.erase(std::remove(s.begin(), s.end(), char32_t(0xAD)), s.end());
  return s;
}

std::u32string normalize_amp(const std::u32string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size(); ++i) {
    std::u32string w = s.substr(i, 5);
    for (auto& c : w) c = (c >= 'A' && c <= 'Z') ? c + 32 : c;
    out += s[i];
    if (w == U"&amp;") i += 4;
  }
  return out;
}

std::u32string parens(const std::u32string& s) { return replace_chars(replace_chars(s, '(', U"-LRB-"), ')', U"-RRB-"); }

std::u32string spelled_fraction(const std::u32string& t) {
  static const std::array<std::pair<char32_t, const char32_t*>, 5> kSpelled = {
      {{0xBC, U"1/4"}, {0xBD, U"1/2"}, {0xBE, U"3/4"}, {0x2153, U"1/3"}, {0x2154, U"2/3"}}};
  for (const auto& [c, s] : kSpelled)
    if (t.size() == 1 && t[0] == c) return s;
  return t;  // the other vulgar fractions stay as they are
}

// PTB3's lossy currency mapping (the WSJ has no euro).
std::u32string ptb3_currency(const std::u32string& t) {
  if (t == U"\u00A2") return U"cents";
  if (t == U"\u00A3") return U"#";
  if (t == U"\u0080" || t == U"\u00A4" || t == U"\u20A0" || t == U"\u20AC") return U"$";
  return t;
}

std::u32string rewrite(Act act, const std::u32string& t, const ptb::Rule& r) {
  switch (act) {
    case Act::kSoftHyphen:
      return without_soft_hyphens(t);
    case Act::kQuoteLeft:
      return ptb::latex_quotes(t, true);
    case Act::kQuoteRight:
      return ptb::latex_quotes(t, false);
    case Act::kFixed:
      return r.fixed;
    case Act::kAmp:
      return normalize_amp(t);
    case Act::kSpaceToNbsp:
      return replace_chars(t, ' ', U"\u00A0");
    case Act::kFraction:
      return spelled_fraction(t);
    case Act::kCurrency:
      return ptb3_currency(t);
    case Act::kPhone:
      return parens(replace_chars(t, ' ', U"\u00A0"));
    case Act::kSmiley:
      return parens(t);
    case Act::kHyphens:
      return t.size() >= 3 && t.size() <= 4 ? U"--" : t;
    default:
      return t;
  }
}

}  // namespace

std::vector<std::vector<std::string>> ptb_tokenize_lines(const std::string& text) {
  const std::u32string s = ptb::utf8_to_u32(text);
  std::vector<std::vector<std::string>> lines(1);
  for (uint32_t i = 0; i < s.size();) {
    const Match m = best_match(s, i);
    if (m.total == 0) {  // untokenizable: PTBTokenizer's default "firstDelete" drops it
      ++i;
      continue;
    }
    const auto& r = ptb::rules()[m.rule];
    uint32_t len = m.token - i;
    std::u32string tok = s.substr(i, len);
    if (r.act == Act::kPushback) {
      len -= static_cast<uint32_t>(r.pushback);
      tok.resize(len);
    } else if (r.act == Act::kAcronymEnd || r.act == Act::kAbbrevEnd) {
      // The period ends the sentence too: emit the word (with it, unless a lone "I."), lex it again.
      len -= 1;
      if (r.act == Act::kAcronymEnd && tok.size() == 2) tok.resize(1);
    }
    i += len;
    if (r.act == Act::kSkip) continue;
    if (r.act == Act::kNewline) {
      lines.emplace_back();
      continue;
    }
    lines.back().push_back(ptb::u32_to_utf8(ptb::java_lower(rewrite(r.act, tok, r))));
  }
  return lines;
}

std::string join_captions(const std::vector<std::string>& captions) {
  std::string joined;
  for (size_t k = 0; k < captions.size(); ++k) {
    std::u32string c = ptb::utf8_to_u32(captions[k]);
    for (auto& ch : c)
      if (ch != 0x85 && ptb::is_newline(ch)) ch = ' ';  // U+0085 lexes as an ellipsis, not a line break
    if (k) joined += '\n';
    joined += ptb::u32_to_utf8(c);
  }
  return joined;
}

std::vector<std::string> drop_punctuation(const std::vector<std::vector<std::string>>& lines, size_t n) {
  VIMO_CHECK(lines.size() == n, "PTB tokenizer: " + std::to_string(n) + " captions came back as " +
                                    std::to_string(lines.size()) + " lines");
  std::vector<std::string> out(n);
  for (size_t k = 0; k < n; ++k)
    for (const auto& t : lines[k]) {
      if (std::find(kPunctuations.begin(), kPunctuations.end(), t) != kPunctuations.end()) continue;
      if (!out[k].empty()) out[k] += ' ';
      out[k] += t;
    }
  return out;
}

std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions) {
  if (captions.empty()) return {};
  return drop_punctuation(ptb_tokenize_lines(join_captions(captions)), captions.size());
}

}  // namespace vimo::eval

// BLEU, ROUGE-L and CIDEr-D on tokenized caption sets, in pycocoevalcap's arithmetic order.
#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "ptb_chars.h"
#include "vimo/core/error.h"
#include "vimo/eval/captions.h"

namespace vimo::eval {
namespace {

using Counts = std::unordered_map<std::string, int>;  // n-gram (words joined by ' ') -> count

// Python's str.isspace for the whitespace that str.split() (no argument) splits on.
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::vector<std::string> py_split(const std::string& s) {  // s.split()
  std::vector<std::string> out;
  std::u32string cur;
  for (char32_t c : ptb::utf8_to_u32(s)) {
    if (py_space(c)) {
      if (!cur.empty()) out.push_back(ptb::u32_to_utf8(cur)), cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(ptb::u32_to_utf8(cur));
  return out;
}

std::vector<std::string> py_split_space(const std::string& s) {  // s.split(" "): "" -> [""]
  std::vector<std::string> out(1);
  for (char c : s) c == ' ' ? out.emplace_back() : out.back() += c;
  return out;
}

// precook(): counts of all 1..4-grams.
Counts ngrams(const std::vector<std::string>& w, int n = 4) {
  Counts c;
  for (int k = 1; k <= n; ++k)
    for (size_t i = 0; i + k <= w.size(); ++i) {
      std::string g = w[i];
      for (int j = 1; j < k; ++j) g += ' ' + w[i + j];
      ++c[g];
    }
  return c;
}

int order_of(const std::string& gram) { return 1 + static_cast<int>(std::count(gram.begin(), gram.end(), ' ')); }

size_t lcs(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

void check_sets(const std::vector<TokenizedSet>& sets, const char* fn) {
  VIMO_CHECK(!sets.empty(), std::string(fn) + ": no caption sets to score");
  for (size_t i = 0; i < sets.size(); ++i)
    VIMO_CHECK(!sets[i].refs.empty(), std::string(fn) + ": caption set " + std::to_string(i) + " has no references");
}

// CIDEr's tf-idf vectors per n-gram order, their norms, and the "length" pycocoevalcap uses: it counts
// the term frequencies of order-2 entries (n == 1 there), i.e. the number of bigrams.
struct TfIdf {
  std::array<std::unordered_map<std::string, double>, 4> vec;
  std::array<double, 4> norm{};
  double length = 0;
};

TfIdf tfidf(const Counts& c, const std::unordered_map<std::string, double>& df, double ref_len) {
  TfIdf t;
  for (const auto& [g, tf] : c) {
    auto it = df.find(g);
    const double d = std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
    const int n = order_of(g) - 1;
    const double v = static_cast<double>(tf) * (ref_len - d);
    t.vec[n][g] = v;
    t.norm[n] += v * v;
    if (n == 1) t.length += tf;
  }
  for (auto& x : t.norm) x = std::sqrt(x);
  return t;
}

}  // namespace

std::array<double, 4> bleu(const std::vector<TokenizedSet>& sets) {
  check_sets(sets, "bleu");
  constexpr double kSmall = 1e-9, kTiny = 1e-15;
  std::array<long long, 4> guess{}, correct{};
  long long testlen = 0, reflen = 0;
  for (const auto& s : sets) {
    Counts maxref;
    std::vector<long long> lens;
    for (const auto& r : s.refs) {
      const auto w = py_split(r);
      lens.push_back(static_cast<long long>(w.size()));
      for (const auto& [g, c] : ngrams(w)) maxref[g] = std::max(maxref[g], c);
    }
    const auto w = py_split(s.hyp);
    const auto tl = static_cast<long long>(w.size());
    long long closest = lens[0];  // min over (|l - testlen|, l)
    for (long long l : lens)
      if (std::llabs(l - tl) < std::llabs(closest - tl) ||
          (std::llabs(l - tl) == std::llabs(closest - tl) && l < closest))
        closest = l;
    testlen += tl, reflen += closest;
    for (int k = 0; k < 4; ++k) guess[k] += std::max(0LL, tl - k);
    for (const auto& [g, c] : ngrams(w)) {
      auto it = maxref.find(g);
      correct[order_of(g) - 1] += std::min(it == maxref.end() ? 0 : it->second, c);
    }
  }
  std::array<double, 4> out{};
  double b = 1.0;
  for (int k = 0; k < 4; ++k) {
    b *= (static_cast<double>(correct[k]) + kTiny) / (static_cast<double>(guess[k]) + kSmall);
    out[k] = std::pow(b, 1.0 / (k + 1));
  }
  const double ratio = (static_cast<double>(testlen) + kTiny) / (static_cast<double>(reflen) + kSmall);
  if (ratio < 1)
    for (auto& x : out) x *= std::exp(1 - 1 / ratio);
  return out;
}

double rouge_l(const std::vector<TokenizedSet>& sets) {
  check_sets(sets, "rouge_l");
  const double beta2 = std::pow(1.2, 2);
  double sum = 0;
  for (const auto& s : sets) {
    const auto c = py_split_space(s.hyp);
    double pmax = 0, rmax = 0;
    for (const auto& ref : s.refs) {
      const auto r = py_split_space(ref);
      const double l = static_cast<double>(lcs(r, c));
      pmax = std::max(pmax, l / static_cast<double>(c.size()));
      rmax = std::max(rmax, l / static_cast<double>(r.size()));
    }
    sum += (pmax != 0 && rmax != 0) ? ((1 + beta2) * pmax * rmax) / (rmax + beta2 * pmax) : 0.0;
  }
  return sum / static_cast<double>(sets.size());
}

double cider_d(const std::vector<TokenizedSet>& sets) {
  check_sets(sets, "cider_d");
  constexpr double kSigma = 6.0;
  std::vector<std::vector<Counts>> refs(sets.size());
  std::vector<Counts> hyps(sets.size());
  std::unordered_map<std::string, double> df;
  for (size_t i = 0; i < sets.size(); ++i) {
    std::unordered_set<std::string> seen;
    for (const auto& r : sets[i].refs) {
      refs[i].push_back(ngrams(py_split(r)));
      for (const auto& kv : refs[i].back()) seen.insert(kv.first);
    }
    for (const auto& g : seen) df[g] += 1;
    hyps[i] = ngrams(py_split(sets[i].hyp));
  }
  // pycocoevalcap would fail on max() of no document frequencies (all references empty); score 0.
  if (df.empty()) return 0.0;
  const double ref_len = std::log(static_cast<double>(sets.size()));
  double total = 0;
  for (size_t i = 0; i < sets.size(); ++i) {
    const TfIdf h = tfidf(hyps[i], df, ref_len);
    std::array<double, 4> score{};
    for (const auto& rc : refs[i]) {
      const TfIdf r = tfidf(rc, df, ref_len);
      const double delta = h.length - r.length;
      for (int n = 0; n < 4; ++n) {
        double val = 0;
        for (const auto& [g, vh] : h.vec[n]) {
          auto it = r.vec[n].find(g);
          const double vr = it == r.vec[n].end() ? 0.0 : it->second;
          val += std::min(vh, vr) * vr;
        }
        if (h.norm[n] != 0 && r.norm[n] != 0) val /= h.norm[n] * r.norm[n];
        score[n] += val * std::pow(M_E, -(delta * delta) / (2 * kSigma * kSigma));
      }
    }
    const double avg = (score[0] + score[1] + score[2] + score[3]) / 4.0;
    total += avg / static_cast<double>(refs[i].size()) * 10.0;
  }
  return total / static_cast<double>(sets.size());
}

}  // namespace vimo::eval

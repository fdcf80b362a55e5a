// A small longest-match pattern engine for transcribing JFlex macros: a pattern yields every end
// position it can reach from a start, so alternations and bounded repeats find the longest match the
// way a DFA scanner does. Internal to the PTB tokenizer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace vimo::eval::ptb {

using Ends = std::vector<uint32_t>;

class Pat {
 public:
  enum class Kind { kClass, kLit, kSeq, kAlt, kRep };
  Pat() = default;
  static Pat cls(std::function<bool(char32_t)> pred) {
    Pat p(Kind::kClass);
    p.n_->pred = std::move(pred);
    return p;
  }
  // A literal; caseless as in PTBLexer's %caseless (ASCII letters match either case).
  static Pat lit(const std::u32string& s, bool caseless = true) {
    Pat p(Kind::kLit);
    p.n_->text = s;
    p.n_->caseless = caseless;
    return p;
  }
  static Pat rep(const Pat& a, int lo, int hi) {  // hi < 0: unbounded
    Pat p(Kind::kRep);
    p.n_->kids = {a};
    p.n_->lo = lo, p.n_->hi = hi;
    return p;
  }
  friend Pat operator+(const Pat& a, const Pat& b) { return join(Kind::kSeq, a, b); }
  friend Pat operator|(const Pat& a, const Pat& b) { return join(Kind::kAlt, a, b); }

  // Appends the end positions reachable from `i` in `s` (sorted, unique).
  void ends(const std::u32string& s, uint32_t i, Ends& out) const {
    Ends tmp;
    collect(s, i, tmp);
    std::sort(tmp.begin(), tmp.end());
    tmp.erase(std::unique(tmp.begin(), tmp.end()), tmp.end());
    out.insert(out.end(), tmp.begin(), tmp.end());
  }
  // Whether a match can begin with `c` (true also for patterns that can match the empty string):
  // a cheap filter before the full match.
  bool may_start(char32_t c) const {
    const Node& n = *n_;
    switch (n.kind) {
      case Kind::kClass:
        return n.pred(c);
      case Kind::kLit:
        return n.text.empty() || (n.caseless ? fold(c) == fold(n.text[0]) : c == n.text[0]);
      case Kind::kAlt:
        return std::any_of(n.kids.begin(), n.kids.end(), [c](const Pat& k) { return k.may_start(c); });
      case Kind::kSeq:
        for (const Pat& k : n.kids) {
          if (k.may_start(c)) return true;
          if (!k.nullable()) return false;
        }
        return true;
      case Kind::kRep:
        return n.lo == 0 || n.kids[0].may_start(c);
    }
    return true;
  }
  bool nullable() const {
    const Node& n = *n_;
    switch (n.kind) {
      case Kind::kClass:
        return false;
      case Kind::kLit:
        return n.text.empty();
      case Kind::kAlt:
        return std::any_of(n.kids.begin(), n.kids.end(), [](const Pat& k) { return k.nullable(); });
      case Kind::kSeq:
        return std::all_of(n.kids.begin(), n.kids.end(), [](const Pat& k) { return k.nullable(); });
      case Kind::kRep:
        return n.lo == 0 || n.kids[0].nullable();
    }
    return true;
  }
  // The longest match's end, or 0 when there is none (no pattern matches the empty string here).
  uint32_t longest(const std::u32string& s, uint32_t i) const {
    Ends e;
    collect(s, i, e);
    return e.empty() ? 0 : *std::max_element(e.begin(), e.end());
  }

 private:
  struct Node {
    Kind kind;
    std::function<bool(char32_t)> pred;
    std::u32string text;
    bool caseless = true;
    std::vector<Pat> kids;
    int lo = 0, hi = 0;
  };
  explicit Pat(Kind k) : n_(std::make_shared<Node>()) { n_->kind = k; }

  static Pat join(Kind k, const Pat& a, const Pat& b) {
    Pat p(k);
    for (const Pat* x : {&a, &b}) {
      if (x->n_->kind == k) {
        p.n_->kids.insert(p.n_->kids.end(), x->n_->kids.begin(), x->n_->kids.end());
      } else {
        p.n_->kids.push_back(*x);
      }
    }
    return p;
  }

  static char32_t fold(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

  static void dedupe(Ends& e) {
    std::sort(e.begin(), e.end());
    e.erase(std::unique(e.begin(), e.end()), e.end());
  }

  void collect(const std::u32string& s, uint32_t i, Ends& out) const {
    const Node& n = *n_;
    switch (n.kind) {
      case Kind::kClass:
        if (i < s.size() && n.pred(s[i])) out.push_back(i + 1);
        return;
      case Kind::kLit:
        if (i + n.text.size() > s.size()) return;
        for (size_t k = 0; k < n.text.size(); ++k)
          if (n.caseless ? fold(s[i + k]) != fold(n.text[k]) : s[i + k] != n.text[k]) return;
        out.push_back(i + static_cast<uint32_t>(n.text.size()));
        return;
      case Kind::kAlt:
        for (const Pat& k : n.kids) k.collect(s, i, out);
        return;
      case Kind::kSeq: {
        Ends cur{i}, next;
        for (const Pat& k : n.kids) {
          next.clear();
          for (uint32_t p : cur) k.collect(s, p, next);
          if (next.empty()) return;
          dedupe(next);
          cur.swap(next);
        }
        out.insert(out.end(), cur.begin(), cur.end());
        return;
      }
      case Kind::kRep: {
        Ends cur{i}, next, seen;
        if (n.lo == 0) out.push_back(i);
        for (int count = 1; n.hi < 0 || count <= n.hi; ++count) {
          next.clear();
          for (uint32_t p : cur) n.kids[0].collect(s, p, next);
          dedupe(next);
          if (count > n.lo) {  // past the minimum a position seen before adds nothing new
            Ends fresh;
            std::set_difference(next.begin(), next.end(), seen.begin(), seen.end(), std::back_inserter(fresh));
            next.swap(fresh);
          }
          if (next.empty()) return;
          if (count >= n.lo) {
            out.insert(out.end(), next.begin(), next.end());
            Ends merged;
            std::set_union(seen.begin(), seen.end(), next.begin(), next.end(), std::back_inserter(merged));
            seen.swap(merged);
          }
          cur.swap(next);
        }
        return;
      }
    }
  }

  std::shared_ptr<Node> n_;
};

inline Pat rep(const Pat& a, int lo, int hi) { return Pat::rep(a, lo, hi); }
inline Pat star(const Pat& a) { return Pat::rep(a, 0, -1); }
inline Pat plus(const Pat& a) { return Pat::rep(a, 1, -1); }
inline Pat opt(const Pat& a) { return Pat::rep(a, 0, 1); }
inline Pat lit(const std::u32string& s) { return Pat::lit(s); }
inline Pat cls(std::function<bool(char32_t)> pred) { return Pat::cls(std::move(pred)); }
// One of the characters in `chars` (exactly: JFlex's %caseless leaves character classes alone).
inline Pat any_of(const std::u32string& chars) {
  return Pat::cls([chars](char32_t c) { return chars.find(c) != std::u32string::npos; });
}
inline Pat none_of(const std::u32string& chars) {
  return Pat::cls([chars](char32_t c) { return chars.find(c) == std::u32string::npos; });
}
inline Pat range(char32_t lo, char32_t hi) {
  return Pat::cls([lo, hi](char32_t c) { return c >= lo && c <= hi; });
}

}  // namespace vimo::eval::ptb

// Mirror and person-swap augmentation of 262-d two-person features and of their captions.
#include "vimo/data/augment.h"

#include <cctype>
#include <map>

#include "layout.h"
#include "vimo/core/error.h"
#include "vimo/core/log.h"

namespace vimo::data {
namespace {

using motion::kFeatureDim;
using motion::kNumJoints;

// Channel permutation and signs of the mirror: out[c] = sign[c] * x[perm[c]].
struct MirrorMap {
  torch::Tensor perm, sign;
  MirrorMap() {
    std::vector<int64_t> p(kFeatureDim);
    std::vector<float> s(kFeatureDim, 1.f);
    for (int j = 0; j < kNumJoints; ++j) {
      const int m = kMirrorJoint[j];
      for (int c = 0; c < 3; ++c) {
        p[kPosBegin + 3 * j + c] = kPosBegin + 3 * m + c;
        p[kVelBegin + 3 * j + c] = kVelBegin + 3 * m + c;
        if (c == 0) s[kPosBegin + 3 * j] = s[kVelBegin + 3 * j] = -1.f;
      }
    }
    // M R M with M = diag(-1,1,1) multiplies entry (i,k) by m_i m_k. The 6D value holds two
    // columns (or rows: the signs are the same) of R: (0,0) (1,0) (2,0) (0,1) (1,1) (2,1).
    const float rot_sign[6] = {1, -1, -1, -1, 1, 1};
    for (int j = 1; j < kNumJoints; ++j)
      for (int k = 0; k < 6; ++k) {
        p[kRotBegin + 6 * (j - 1) + k] = kRotBegin + 6 * (kMirrorJoint[j] - 1) + k;
        s[kRotBegin + 6 * (j - 1) + k] = rot_sign[k];
      }
    // Contacts are (l_ankle, l_foot, r_ankle, r_foot).
    const int cp[4] = {2, 3, 0, 1};
    for (int k = 0; k < 4; ++k) p[kContactBegin + k] = kContactBegin + cp[k];
    perm = torch::tensor(p, torch::kLong);
    sign = torch::tensor(s, torch::kFloat32);
  }
};

// Replaces whole words by a table, keeping the first letter's case (or all caps).
std::string replace_words(const std::string& text, const std::map<std::string, std::string>& table) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && (std::isalpha(static_cast<unsigned char>(text[j])) || text[j] == '-')) ++j;
    const std::string word = text.substr(i, j - i);
    std::string lower = word;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    auto it = table.find(lower);
    if (it == table.end()) {
      out += word;
    } else {
      std::string rep = it->second;
      const bool all_caps =
          word.size() > 1 && std::all_of(word.begin(), word.end(), [](char ch) {
            return !std::isalpha(static_cast<unsigned char>(ch)) || std::isupper(static_cast<unsigned char>(ch));
          });
      if (all_caps)
        for (auto& ch : rep) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      else if (std::isupper(static_cast<unsigned char>(word[0])))
        rep[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(rep[0])));
      out += rep;
    }
    i = j;
  }
  return out;
}

// Replaces whole phrases (lower-case match, word boundaries), simultaneously: A->B and B->A.
std::string replace_phrases(const std::string& text, const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string lower = text;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto boundary = [&](size_t pos) {
    return pos >= text.size() || !std::isalnum(static_cast<unsigned char>(text[pos]));
  };
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    bool hit = false;
    if (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]))) {
      for (const auto& [from, to] : pairs) {
        if (lower.compare(i, from.size(), from) == 0 && boundary(i + from.size())) {
          std::string rep = to;  // capitals copied position by position ("Person A" -> "Person B")
          for (size_t k = 0; k < std::min(rep.size(), from.size()); ++k)
            if (std::isupper(static_cast<unsigned char>(text[i + k])))
              rep[k] = static_cast<char>(std::toupper(static_cast<unsigned char>(rep[k])));
          out += rep;
          i += from.size();
          hit = true;
          break;
        }
      }
    }
    if (!hit) out += text[i++];
  }
  return out;
}

}  // namespace

torch::Tensor mirror_features(const torch::Tensor& x) {
  VIMO_CHECK(x.dim() >= 1 && x.size(-1) == kFeatureDim,
             ::vimo::log::cat("mirror_features: expected [..., 262], got ", x.sizes()));
  static const MirrorMap map;
  return x.index_select(-1, map.perm.to(x.device())) * map.sign.to(x.device(), x.scalar_type());
}

std::string mirror_caption(const std::string& text) {
  static const std::map<std::string, std::string> table = {
      {"left", "right"},
      {"right", "left"},
      {"leftward", "rightward"},
      {"rightward", "leftward"},
      {"leftwards", "rightwards"},
      {"rightwards", "leftwards"},
      {"left-hand", "right-hand"},
      {"right-hand", "left-hand"},
      {"left-handed", "right-handed"},
      {"right-handed", "left-handed"},
      {"lefthand", "righthand"},
      {"righthand", "lefthand"},
      {"clockwise", "counterclockwise"},
      {"counterclockwise", "clockwise"},
      {"counter-clockwise", "clockwise"},
      {"anticlockwise", "clockwise"},
      {"anti-clockwise", "clockwise"},
  };
  return replace_words(text, table);
}

PlanarTransform canonical_transform(const torch::Tensor& x, int64_t person, int64_t frame) {
  VIMO_CHECK(x.dim() == 3 && x.size(0) > frame && frame >= 0 && x.size(1) > person && person >= 0 &&
                 x.size(2) == kFeatureDim,
             ::vimo::log::cat("canonical_transform: expected a clip [T, P, 262] with person ", person, " and frame ",
                              frame, ", got ", x.sizes()));
  // Facing as the motion module's canonical frame defines it: forward = up x across, across = r_hip - l_hip.
  auto p0 = x[frame][person].narrow(0, kPosBegin, 3 * kNumJoints).reshape({kNumJoints, 3}).to(torch::kDouble);
  auto across = p0[kRHip] - p0[kLHip];
  double fx = across[2].item<double>(), fz = -across[0].item<double>();  // (0,1,0) x (ax, ay, az)
  const double n = std::sqrt(fx * fx + fz * fz);
  VIMO_CHECK(n > 1e-8, "canonicalize: person " + std::to_string(person + 1) + "'s hips give no facing direction in frame " +
                           std::to_string(frame));
  // The rotation about Y taking (fx, fz) to (0, 1): x' = fz x - fx z, z' = fx x + fz z.
  return {fz / n, fx / n, p0[0][0].item<double>(), p0[0][2].item<double>(), 0, 0};
}

torch::Tensor apply_transform(const torch::Tensor& x, const PlanarTransform& t) {
  VIMO_CHECK(x.dim() == 3 && x.size(2) == kFeatureDim,
             ::vimo::log::cat("apply_transform: expected a clip [T, P, 262], got ", x.sizes()));
  auto y = x.to(torch::kFloat32).clone();
  auto move = [&](torch::Tensor v, bool translate) {  // v: [T, P, 22, 3] view
    auto px = v.select(-1, 0), pz = v.select(-1, 2);
    auto x0 = translate ? px - t.ox : px.clone();
    auto z0 = translate ? pz - t.oz : pz.clone();
    px.copy_(t.c * x0 - t.s * z0 + (translate ? t.tx : 0.0));
    pz.copy_(t.s * x0 + t.c * z0 + (translate ? t.tz : 0.0));
  };
  const int64_t T = y.size(0), P = y.size(1);
  move(y.narrow(2, kPosBegin, 3 * kNumJoints).view({T, P, kNumJoints, 3}), true);
  move(y.narrow(2, kVelBegin, 3 * kNumJoints).view({T, P, kNumJoints, 3}), false);
  return y.to(x.scalar_type());
}

torch::Tensor canonicalize(const torch::Tensor& x) {
  VIMO_CHECK(x.dim() == 3 && x.size(0) >= 1 && x.size(2) == kFeatureDim,
             ::vimo::log::cat("canonicalize: expected a clip [T, P, 262], got ", x.sizes()));
  return apply_transform(x, canonical_transform(x, 0, 0));
}

torch::Tensor swap_persons(const torch::Tensor& x) {
  VIMO_CHECK(x.dim() == 3 && x.size(1) == 2 && x.size(2) == kFeatureDim,
             ::vimo::log::cat("swap_persons: expected a two-person clip [T, 2, 262], got ", x.sizes()));
  return canonicalize(x.flip(1));
}

std::string swap_caption(const std::string& text) {
  static const std::vector<std::pair<std::string, std::string>> pairs = {
      {"first person", "second person"}, {"second person", "first person"}, {"person a", "person b"},
      {"person b", "person a"},          {"person 1", "person 2"},          {"person 2", "person 1"},
      {"the former", "the latter"},      {"the latter", "the former"},
  };
  return replace_phrases(text, pairs);
}

motion::Clip mirror_clip(const motion::Clip& c) {
  motion::Clip m{c.id + "#mirror", mirror_features(c.motion), {}};
  for (const auto& t : c.captions) m.captions.push_back(mirror_caption(t));
  return m;
}

motion::Clip swap_clip(const motion::Clip& c) {
  motion::Clip m{c.id + "#swap", swap_persons(c.motion), {}};
  for (const auto& t : c.captions) m.captions.push_back(swap_caption(t));
  return m;
}

std::string retimed_caption(const std::string& caption, bool slower) {
  return caption + (slower ? " They move slowly." : " They move quickly.");
}

}  // namespace vimo::data

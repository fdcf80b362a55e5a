// Unicode classes for the PTB tokenizer: glibc's C.UTF-8 tables for letters, case and lower-casing,
// narrowed to Java's definitions, plus the fixed sets written into Stanford's PTBLexer.flex.
#include "ptb_chars.h"

#include <locale.h>
#include <wctype.h>

#include <utility>

#include "vimo/core/error.h"

namespace vimo::eval::ptb {
namespace {

using Range = std::pair<char32_t, char32_t>;

template <size_t N>
bool in(const Range (&ranges)[N], char32_t c) {
  for (const auto& [lo, hi] : ranges)
    if (c >= lo && c <= hi) return true;
  return false;
}

// Combining marks and modifiers PTBLexer adds to [:letter:] in its LETTER macro.
constexpr Range kExtraLetters[] = {
    {0x00AD, 0x00AD}, {0x0237, 0x024F}, {0x02C2, 0x02C5}, {0x02D2, 0x02DF}, {0x02E5, 0x02FF}, {0x0300, 0x036F},
    {0x0370, 0x037D}, {0x0384, 0x0385}, {0x03CF, 0x03CF}, {0x03F6, 0x03F6}, {0x03FC, 0x03FF}, {0x0483, 0x0487},
    {0x04CF, 0x04CF}, {0x04F6, 0x04FF}, {0x0510, 0x0525}, {0x055A, 0x055F}, {0x0591, 0x05BD}, {0x05BF, 0x05BF},
    {0x05C1, 0x05C2}, {0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0615, 0x061A}, {0x063B, 0x063F}, {0x064B, 0x065E},
    {0x0670, 0x0670}, {0x06D6, 0x06EF}, {0x06FA, 0x06FF}, {0x070F, 0x070F}, {0x0711, 0x0711}, {0x0730, 0x074F},
    {0x0750, 0x077F}, {0x07A6, 0x07B1}, {0x07CA, 0x07F5}, {0x07FA, 0x07FA}, {0x0900, 0x0903}, {0x093C, 0x093C},
    {0x093E, 0x094E}, {0x0951, 0x0955}, {0x0962, 0x0963}, {0x0981, 0x0983}, {0x09BC, 0x09C4}, {0x09C7, 0x09C8},
    {0x09CB, 0x09CD}, {0x09D7, 0x09D7}, {0x09E2, 0x09E3}, {0x0A01, 0x0A03}, {0x0A3C, 0x0A3C}, {0x0A3E, 0x0A4F},
    {0x0A81, 0x0A83}, {0x0ABC, 0x0ACF}, {0x0B82, 0x0B82}, {0x0BBE, 0x0BC2}, {0x0BC6, 0x0BC8}, {0x0BCA, 0x0BCD},
    {0x0C01, 0x0C03}, {0x0C3E, 0x0C56}, {0x0D3E, 0x0D44}, {0x0D46, 0x0D48}, {0x0E30, 0x0E3A}, {0x0E47, 0x0E4E},
    {0x0EB1, 0x0EBC}, {0x0EC8, 0x0ECD}};

// Letter numbers (Unicode Nl): alphabetic to glibc, not letters to Java.
constexpr Range kLetterNumbers[] = {{0x16EE, 0x16F0}, {0x2160, 0x2188}, {0x3007, 0x3007},
                                    {0x3021, 0x3029}, {0x3038, 0x303A}, {0xA6E6, 0xA6EF}};

// First code point of each run of ten decimal digits (Unicode Nd) in the Basic Multilingual Plane.
constexpr char32_t kDigitZeros[] = {0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66,
                                    0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090,
                                    0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40,
                                    0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xAA50, 0xABF0, 0xFF10};

constexpr Range kMiscSymbols[] = {
    {'+', '+'},       {'%', '%'},       {'&', '&'},       {'~', '~'},       {'^', '^'},       {'|', '|'},
    {'\\', '\\'},     {0x00A6, 0x00A9}, {0x00AC, 0x00AC}, {0x00AE, 0x00AF}, {0x00B0, 0x00BA}, {0x00D7, 0x00D7},
    {0x00F7, 0x00F7}, {0x0387, 0x0387}, {0x05BE, 0x05BE}, {0x05C0, 0x05C0}, {0x05C3, 0x05C3}, {0x05C6, 0x05C6},
    {0x05F3, 0x05F4}, {0x0600, 0x0603}, {0x0606, 0x060A}, {0x060C, 0x060C}, {0x0614, 0x0614}, {0x061B, 0x061B},
    {0x061E, 0x061E}, {0x066A, 0x066A}, {0x066D, 0x066D}, {0x0703, 0x070D}, {0x07F6, 0x07F8}, {0x0964, 0x0965},
    {0x0E4F, 0x0E4F}, {0x1FBD, 0x1FBD}, {0x2016, 0x2017}, {0x2020, 0x2023}, {0x2030, 0x2038}, {0x203B, 0x203B},
    {0x203E, 0x2042}, {0x2044, 0x2044}, {0x207A, 0x207F}, {0x208A, 0x208E}, {0x2100, 0x214F}, {0x2190, 0x21FF},
    {0x2200, 0x2BFF}, {0x3012, 0x3012}, {0x30FB, 0x30FB}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40},
    {0xFF5B, 0xFF65}};

locale_t utf8_locale() {
  static locale_t loc = [] {
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"})
      if (locale_t l = newlocale(LC_CTYPE_MASK, name, nullptr)) return l;
    return locale_t{};
  }();
  VIMO_CHECK(loc != locale_t{},
             "PTB tokenizer: no UTF-8 locale (C.UTF-8) for Unicode character classes; "
             "install the locales package or use --tokenizer stanford");
  return loc;
}

bool bmp(char32_t c) { return c <= 0xFFFF; }  // Java sees the rest as two unclassified surrogates

}  // namespace

bool is_digit(char32_t c) {
  for (char32_t z : kDigitZeros)
    if (c >= z && c < z + 10) return true;
  return false;
}

bool is_letter(char32_t c) {
  if (!bmp(c) || is_digit(c)) return false;
  if (in(kExtraLetters, c)) return true;
  return iswalpha_l(static_cast<wint_t>(c), utf8_locale()) && !in(kLetterNumbers, c);
}

bool is_upper(char32_t c) { return bmp(c) && iswupper_l(static_cast<wint_t>(c), utf8_locale()); }

bool is_space(char32_t c) { return c == ' ' || c == '\t' || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x3000; }

bool is_newline(char32_t c) {
  return c == '\r' || c == '\n' || c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C || c == 0x85;
}

bool is_misc_symbol(char32_t c) { return in(kMiscSymbols, c); }

std::u32string java_lower(const std::u32string& s) {
  std::u32string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == 0x0130) {  // capital I with dot: "i" + combining dot above
      out += U"i\u0307";
    } else if (c == 0x03A3) {  // capital sigma: final form after a letter and not before one
      const bool after = i > 0 && is_letter(s[i - 1]), before = i + 1 < s.size() && is_letter(s[i + 1]);
      out += (after && !before) ? char32_t(0x03C2) : char32_t(0x03C3);
    } else {
      out += bmp(c) ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), utf8_locale())) : c;
    }
  }
  return out;
}

std::u32string utf8_to_u32(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    VIMO_CHECK(n > 0 && i + n <= s.size(), "caption is not valid UTF-8 at byte " + std::to_string(i));
    char32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const auto cb = static_cast<unsigned char>(s[i + k]);
      VIMO_CHECK((cb >> 6) == 2, "caption is not valid UTF-8 at byte " + std::to_string(i + k));
      c = (c << 6) | (cb & 0x3F);
    }
    out += c;
    i += n;
  }
  return out;
}

std::string u32_to_utf8(const std::u32string& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xC0 | (c >> 6)), out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xE0 | (c >> 12)), out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (c >> 18)), out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3F)), out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

}  // namespace vimo::eval::ptb

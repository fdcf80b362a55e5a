// Unicode pieces of the CLIP tokenizer's text cleaning (clip_bpe.cpp): Python's str.lower(), NFC,
// and the lookup tables of ftfy's fixes and html.unescape, on UTF-32 text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace vimo::text::unicode {

using Text = std::u32string;

Text from_utf8(std::string_view s);  // s must be valid UTF-8 (check_utf8)
std::string to_utf8(const Text& t);
void append_utf8(std::string& out, char32_t c);

// str.lower(): simple lowercase mappings, U+0130 to "i\u0307", capital sigma to final sigma in the
// Final_Sigma context.
Text lower(const Text& t);
// unicodedata.normalize("NFC", t), except that CJK compatibility ideographs (U+F900..U+FAFF,
// U+2F800..U+2FA1F) are kept as they are.
Text nfc(const Text& t);
// ftfy's fix_character_width for one code point: appends the standard-width form of a full-width or
// half-width character (and U+3000) to `out` and returns true; returns false for any other.
bool width_form(char32_t c, Text& out);
// Windows-1252's character for a C1 control (0x80..0x9F); undefined bytes map to themselves.
char32_t cp1252(char32_t c);

// An HTML entity by name as html.entities.html5 keys it ("amp;", or "amp" for a legacy name).
struct EntityValue {
  char32_t a = 0, b = 0;  // one or two code points (b == 0: one)
  bool html5 = false;     // a key of html.entities.html5 (html.unescape takes it)
  bool ftfy = false;      // one of ftfy's HTML_ENTITIES (with '&' in front)
};
const EntityValue* entity(std::string_view name);

}  // namespace vimo::text::unicode

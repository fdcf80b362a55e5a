// Character classes of Stanford's PTBLexer (JFlex [:letter:], [:digit:], [:uppercase:] and its own
// sets) and Java's String.toLowerCase, on Unicode code points. Internal to the PTB tokenizer.
#pragma once
#include <string>

namespace vimo::eval::ptb {

bool is_letter(char32_t c);       // Java Character.isLetter or one of PTBLexer's extra LETTER marks
bool is_digit(char32_t c);        // Java Character.isDigit (Unicode Nd)
bool is_upper(char32_t c);        // Java Character.isUpperCase
bool is_space(char32_t c);        // PTBLexer SPACE: [ \t\u00A0\u2000-\u200A\u3000]
bool is_newline(char32_t c);      // PTBLexer NEWLINE characters: \r \n \u2028 \u2029 \u000B \u000C \u0085
bool is_misc_symbol(char32_t c);  // PTBLexer MISCSYMBOL: symbols that are tokens of their own

// Java's String.toLowerCase (simple case mapping plus final sigma and U+0130, as the JDK does).
std::u32string java_lower(const std::u32string& s);

std::u32string utf8_to_u32(const std::string& s);  // throws vimo::Error on malformed UTF-8
std::string u32_to_utf8(const std::u32string& s);

}  // namespace vimo::eval::ptb

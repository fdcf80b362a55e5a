// pycocoevalcap's handling of caption lists around the PTB tokenizer (joining, punctuation removal),
// shared by the builtin tokenizer and the Stanford jar, and finding java. Internal to eval.
#pragma once
#include <string>
#include <vector>

namespace vimo::eval {

// Captions joined by '\n', each one's own line breaks turned into spaces first.
std::string join_captions(const std::vector<std::string>& captions);
// Tokens per line minus pycocoevalcap's punctuation list, joined by spaces; checks there are `n` lines.
std::vector<std::string> drop_punctuation(const std::vector<std::vector<std::string>>& lines, size_t n);

// `java` from $JAVA_HOME/bin or PATH; empty when there is none.
std::string find_java();

}  // namespace vimo::eval

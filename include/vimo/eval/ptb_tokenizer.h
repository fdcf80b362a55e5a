// Caption tokenization as pycocoevalcap does it: Stanford CoreNLP 3.4.1's PTBTokenizer with
// -preserveLines -lowerCase over all captions joined by newlines, then its punctuation list removed.
// vimo's own transcription of PTBLexer's rules (no Java needed); docs/eval.md lists where it may differ.
#pragma once
#include <string>
#include <vector>

namespace vimo::eval {

// The lower-cased PTB tokens of `text`, one vector per line (PTBTokenizer -preserveLines output).
// Lines end at \n, \r\n, \r, U+2028, U+2029, U+000B and U+000C, as in PTBLexer.
std::vector<std::vector<std::string>> ptb_tokenize_lines(const std::string& text);

// pycocoevalcap's PTBTokenizer.tokenize for one list of captions: each caption's newlines become
// spaces, the captions are tokenized as one text (a caption's last token can depend on the next
// caption's first character, as in the reference), and each comes back as its tokens minus
// '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; joined by single spaces.
// Other line-break characters inside a caption also become spaces (pycocoevalcap would misalign).
std::vector<std::string> coco_tokenize(const std::vector<std::string>& captions);

// The same through the reference jar itself, as pycocoevalcap runs it (needs java):
// java -cp JAR edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase FILE.
std::vector<std::string> coco_tokenize_stanford(const std::vector<std::string>& captions, const std::string& jar);

}  // namespace vimo::eval

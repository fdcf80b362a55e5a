// Unit tests for text/: UTF-8 handling, the tokenizer.json BPE merges and field checks, the
// unified vocabulary layout and the chat template, on tiny hand-written tokenizers.
#include <gtest/gtest.h>

#include <filesystem>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"
#include "vimo/text/chat.h"
#include "vimo/text/hf_bpe.h"

namespace vimo::text {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A byte-level tokenizer.json: the 256 byte tokens (id = byte, GPT-2 byte-to-char table), merges
// l+l=256 "ll", h+e=257 "he", he+ll=258 "hell", and `added` tokens from id 259.
json tiny_tokenizer(const std::vector<std::string>& added) {
  json vocab = json::object();
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const uint32_t cp = keep ? b : 256 + n++;
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else s += static_cast<char>(0xC0 | (cp >> 6)), s += static_cast<char>(0x80 | (cp & 0x3F));
    vocab[s] = b;
  }
  vocab["ll"] = 256, vocab["he"] = 257, vocab["hell"] = 258;
  json j = {{"version", "1.0"}, {"normalizer", nullptr}, {"pre_tokenizer", nullptr}, {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"l l", "h e", "he ll"}}}}};
  j["added_tokens"] = json::array();
  for (size_t i = 0; i < added.size(); ++i)
    j["added_tokens"].push_back({{"id", 259 + static_cast<int>(i)}, {"content", added[i]}, {"special", true}});
  return j;
}

std::string write_json(const json& j, const std::string& name) {
  const std::string p = (fs::temp_directory_path() / ("vimo_text_test_" + name + ".json")).string();
  core::write_file_atomic(p, j.dump());
  return p;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TextUtf8, FindsInvalidSequencesAndReplacesMaximalSubparts) {
  EXPECT_EQ(first_invalid_utf8("h\xC3\xA9llo \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(first_invalid_utf8("ab\xC3("), 2u);      // lead byte without its continuation
  EXPECT_EQ(first_invalid_utf8("\xED\xA0\x80"), 0u);  // a UTF-16 surrogate
  EXPECT_EQ(first_invalid_utf8("\xC0\xAF"), 0u);      // overlong
  // Unicode 15 §3.9 U+FFFD substitution of maximal subparts (as Python's errors="replace").
  EXPECT_EQ(utf8_lossy("a\xF0\x9F\x98"), "a\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xC3(\x80"), "\xEF\xBF\xBD(\xEF\xBF\xBD");
  const std::string msg = error_of([] { check_utf8("ok\xFF", "line 3"); });
  EXPECT_NE(msg.find("line 3 is not valid UTF-8: byte 2 (0xFF)"), std::string::npos) << msg;
}

TEST(TextHfBpe, MergesByRankAndSplitsAddedTokens) {
  HfBpeTokenizer tok(write_json(tiny_tokenizer({"<s>", "<|reserved_special_token_0|>"}), "merges"));
  EXPECT_EQ(tok.vocab_size(), 261);
  // h e l l o -> (l,l) rank 0 -> (h,e) rank 1 -> (he,ll) rank 2.
  EXPECT_EQ(tok.encode("hello"), (std::vector<int>{258, 'o'}));
  EXPECT_EQ(tok.encode("hel<s>lo"), (std::vector<int>{257, 'l', 259, 'l', 'o'}));
  EXPECT_EQ(tok.decode({258, 'o', 259}), "hello<s>");
  EXPECT_EQ(tok.decode({258, 259}, true), "hell");
  EXPECT_EQ(tok.decode({0xC3}), "\xEF\xBF\xBD");  // half a character decodes to U+FFFD
  EXPECT_NE(error_of([&] { tok.encode("bad \xC3"); }).find("not valid UTF-8"), std::string::npos);
}

TEST(TextHfBpe, RefusesUnsupportedFieldsByName) {
  auto j = tiny_tokenizer({});
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(error_of([&] { HfBpeTokenizer t(write_json(j, "bad1")); }).find("model.type \"WordPiece\""), std::string::npos);
  j = tiny_tokenizer({});
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Whitespace"}}}}};
  EXPECT_NE(error_of([&] { HfBpeTokenizer t(write_json(j, "bad2")); }).find("pre_tokenizer.pretokenizers[0].type \"Whitespace\""),
            std::string::npos);
  j = tiny_tokenizer({});
  j["normalizer"] = {{"type", "NFC"}};
  EXPECT_NE(error_of([&] { HfBpeTokenizer t(write_json(j, "bad3")); }).find("normalizer.type \"NFC\""), std::string::npos);
  j = tiny_tokenizer({});
  j["model"]["merges"].push_back("x zz");
  EXPECT_NE(error_of([&] { HfBpeTokenizer t(write_json(j, "bad4")); }).find("model.merges[3]"), std::string::npos);
}

TEST(TextVocab, AppendsSpecialsThenMotionTokens) {
  HfBpeTokenizer tok(write_json(tiny_tokenizer({"<motion>"}), "vocab1"));
  const auto v = UnifiedVocab::build(tok, {8, 3});
  // <motion> is the tokenizer's own special (id 259); the other 10 follow the 260 text ids.
  EXPECT_EQ(v.special("<motion>"), 259);
  EXPECT_EQ(v.special("</motion>"), 260);
  EXPECT_EQ(v.special("<pad>"), 269);
  EXPECT_EQ(v.motion_base(), 270);
  EXPECT_EQ(v.size(), 270 + 24);
  EXPECT_EQ(v.motion_id(2, 5), 270 + 2 * 8 + 5);
  const TokenInfo i = v.info(270 + 2 * 8 + 5);
  EXPECT_TRUE(i.kind == TokenKind::kMotion && i.q == 2 && i.k == 5);
  EXPECT_TRUE(v.info(104).kind == TokenKind::kText);
  EXPECT_TRUE(v.info(259).kind == TokenKind::kSpecial);
  EXPECT_NE(error_of([&] { v.special("<motion_c>"); }).find("unknown special token '<motion_c>'"), std::string::npos);
  const std::string path = (fs::temp_directory_path() / "vimo_text_test_vocab.json").string();
  v.save(path);
  const auto w = UnifiedVocab::load(path);
  EXPECT_EQ(w.specials(), v.specials());
  EXPECT_EQ(w.motion_base(), v.motion_base());
  EXPECT_EQ(w.size(), v.size());
}

TEST(TextVocab, ReusesReservedSpecialTokens) {
  std::vector<std::string> added;
  for (int i = 0; i < 4; ++i) added.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
  HfBpeTokenizer tok(write_json(tiny_tokenizer(added), "vocab2"));
  const auto v = UnifiedVocab::build(tok, {4, 2});
  EXPECT_EQ(v.special("<motion>"), 259);     // reserved 0
  EXPECT_EQ(v.special("</motion_a>"), 262);  // reserved 3
  EXPECT_EQ(v.special("<motion_b>"), 263);  // first new id: the 4 reserved are used up
  EXPECT_EQ(v.motion_base(), 263 + 7);
}

TEST(TextChat, RenderMasksAssistantAndParsesBack) {
  HfBpeTokenizer tok(write_json(tiny_tokenizer({}), "chat"));
  const auto v = UnifiedVocab::build(tok, {4, 2});  // specials 259..269, motion from 270
  const ChatTemplate tpl(v, tok);
  Conversation c = {{Role::kUser, {{Segment::Kind::kText, "hello", {}}, {Segment::Kind::kMotion, "", {1, 2, 3, 0}}}},
                    {Role::kAssistant, {{Segment::Kind::kText, "hell", {}}, {Segment::Kind::kMotionA, "", {3, 1}}}}};
  const Rendered r = tpl.render(c);
  // <|user|> hell o <motion> A(q0=1,q1=2) B(q0=3,q1=0) </motion> <|end|> <|assistant|> hell <motion_a> ... <|end|>
  const std::vector<int> want = {266, 258, 'o', 259, 271, 276, 273, 274, 260, 268,
                                 267, 258, 261, 273, 275, 262, 268};
  EXPECT_EQ(r.ids, want);
  const std::vector<uint8_t> mask = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(r.loss_mask, mask);
  EXPECT_EQ(tpl.parse(r.ids), c);
  auto bad = r.ids;
  bad[4] = 276;  // a q=1 code where q=0 belongs
  EXPECT_NE(error_of([&] { tpl.parse(bad); }).find("not a motion token of quantizer 0"), std::string::npos);
  // Generation cut inside a motion block keeps the whole frames.
  const std::vector<int> cut(r.ids.begin(), r.ids.begin() + 7);
  EXPECT_EQ(tpl.parse(cut)[0].segments[1].codes, (std::vector<int>{}));
}

}  // namespace
}  // namespace vimo::text

// `vimo text train | encode | decode`: SentencePiece training and text <-> ids with any tokenizer.
#include <fstream>
#include <iostream>

#include "command.h"
#include "vimo/core/error.h"
#include "vimo/text/clip_bpe.h"
#include "vimo/text/sentencepiece.h"
#include "vimo/text/tokenizer.h"

namespace vimo::cli {
namespace {

struct Opts {
  std::string tokenizer, input, text;
  std::vector<std::string> ids;
  bool add_special = false, skip_special = false, json_lines = false;
  int context = 0;  // > 0: CLIP's padded form (open_clip.tokenize)
};

// Lines of `path`; with json_lines each line is a JSON string (so it may hold newlines).
std::vector<std::string> read_lines(const std::string& path, bool json_lines) {
  std::ifstream f(path, std::ios::binary);
  VIMO_CHECK(f, "cannot open --input '" + path + "'");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!json_lines) {
      out.push_back(line);
      continue;
    }
    try {
      out.push_back(nlohmann::json::parse(line).get<std::string>());
    } catch (const std::exception& e) {
      throw Error("--input '" + path + "' line " + std::to_string(out.size() + 1) + " is not a JSON string: " + e.what());
    }
  }
  return out;
}

std::vector<int> parse_ids(const std::vector<std::string>& words) {
  std::vector<int> ids;
  for (const auto& w : words) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(w, &used);
    } catch (const std::exception&) {
    }
    VIMO_CHECK(used == w.size() && v >= 0, "'" + w + "' is not a token id (a non-negative integer)");
    ids.push_back(v);
  }
  return ids;
}

Registrar reg(40, [](CLI::App& app) {
  auto* g = group(app, "text", "text tokenizers, the unified vocabulary and the chat template");

  auto t = std::make_shared<text::SentencePieceTrainOptions>();
  auto* tr = g->add_subcommand("train", "train a SentencePiece model on a corpus (one sentence per line)");
  tr->add_option("--input", t->input, "training corpus, UTF-8")->required();
  tr->add_option("--vocab-size", t->vocab_size, "vocabulary size")->required();
  tr->add_option("--model-type", t->model_type, "unigram or bpe")->check(CLI::IsMember({"unigram", "bpe"}));
  tr->add_option("--out", t->out, "the .model file to write")->required();
  tr->add_option("--character-coverage", t->character_coverage, "share of characters covered by the vocabulary");
  tr->add_option("--normalization", t->normalization, "nmt_nfkc | nfkc | nmt_nfkc_cf | nfkc_cf | identity");
  tr->add_flag("--byte-fallback", t->byte_fallback, "spell unknown characters as <0xNN> byte pieces");
  tr->add_flag("--keep-whitespace", t->keep_whitespace, "keep whitespace runs as written");
  tr->add_flag("--split-digits", t->split_digits, "split numbers into single digits");
  tr->add_option("--threads", t->threads, "training threads");
  tr->callback([t] {
    text::train_sentencepiece(*t);
    std::cout << "wrote " << t->out << "\n";
  });

  auto o = std::make_shared<Opts>();
  auto* en = g->add_subcommand("encode", "print the ids of TEXT, or one line of ids per line of --input");
  en->add_option("--tokenizer", o->tokenizer, "tokenizer.json, SentencePiece .model or CLIP bpe_simple_vocab_16e6.txt.gz")->required();
  en->add_option("text", o->text, "text to encode");
  en->add_option("--input", o->input, "file of lines to encode");
  en->add_flag("--add-special", o->add_special, "add the tokenizer's BOS/EOS as its post-processor does");
  en->add_flag("--json-lines", o->json_lines, "each --input line is a JSON string (may hold newlines)");
  en->add_option("--context", o->context, "CLIP tokenizer: print open_clip.tokenize's N ids (sot, ids, eot, 0s)");
  en->callback([o] {
    VIMO_CHECK(o->input.empty() != o->text.empty(), "give either TEXT or --input FILE");
    const auto tok = text::load_text_tokenizer(o->tokenizer);
    const auto* clip = dynamic_cast<const text::ClipBpeTokenizer*>(tok.get());
    VIMO_CHECK(o->context == 0 || clip, "--context applies to a CLIP tokenizer (bpe_simple_vocab_16e6.txt.gz), not to " +
                                            tok->kind() + " '" + o->tokenizer + "'");
    const auto lines = o->input.empty() ? std::vector<std::string>{o->text} : read_lines(o->input, o->json_lines);
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
      std::vector<int64_t> ids;
      try {
        if (o->context > 0) {
          ids = text::clip_tokenize(*clip, lines[i], o->context);
        } else {
          const auto v = tok->encode(lines[i], o->add_special);
          ids.assign(v.begin(), v.end());
        }
      } catch (const Error& e) {
        throw Error((o->input.empty() ? std::string() : "--input line " + std::to_string(i + 1) + ": ") + e.what());
      }
      for (size_t k = 0; k < ids.size(); ++k) out += (k ? " " : "") + std::to_string(ids[k]);
      out += "\n";
    }
    std::cout << out;
  });

  auto d = std::make_shared<Opts>();
  auto* de = g->add_subcommand("decode", "print the text of IDS, or of each line of ids in --input");
  de->add_option("--tokenizer", d->tokenizer, "tokenizer.json, SentencePiece .model or CLIP bpe_simple_vocab_16e6.txt.gz")->required();
  de->add_option("ids", d->ids, "token ids");
  de->add_option("--input", d->input, "file with one line of space-separated ids per text");
  de->add_flag("--skip-special", d->skip_special, "leave out special tokens");
  de->add_flag("--json-lines", d->json_lines, "print each text as a JSON string on its own line");
  de->callback([d] {
    VIMO_CHECK(d->input.empty() != d->ids.empty(), "give either IDS or --input FILE");
    const auto tok = text::load_text_tokenizer(d->tokenizer);
    std::vector<std::vector<std::string>> rows;
    if (d->input.empty()) rows.push_back(d->ids);
    for (const auto& line : d->input.empty() ? std::vector<std::string>{} : read_lines(d->input, false)) {
      std::istringstream s(line);
      rows.emplace_back(std::istream_iterator<std::string>(s), std::istream_iterator<std::string>());
    }
    for (const auto& r : rows) {
      const std::string s = tok->decode(parse_ids(r), d->skip_special);
      std::cout << (d->json_lines ? nlohmann::json(s).dump() : s) << "\n";
    }
  });
});

}  // namespace
}  // namespace vimo::cli

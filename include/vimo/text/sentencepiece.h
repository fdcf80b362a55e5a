// SentencePiece backend (libsentencepiece): load a .model, encode/decode, and train a new model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "vimo/text/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace vimo::text {

class SentencePieceTokenizer : public TextTokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path);
  ~SentencePieceTokenizer() override;
  std::vector<int> encode(std::string_view text, bool add_special = false) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override;
  std::string id_to_token(int id) const override;
  std::optional<int> token_to_id(std::string_view token) const override;
  bool is_special(int id) const override;
  std::optional<int> bos_id() const override;
  std::optional<int> eos_id() const override;
  std::string kind() const override { return "sentencepiece"; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

// Options of `vimo text train`; the defaults are SentencePiece's own except `threads`.
struct SentencePieceTrainOptions {
  std::string input;           // one sentence per line, UTF-8
  std::string out;             // the .model file written (atomically)
  int vocab_size = 8000;
  std::string model_type = "unigram";  // unigram | bpe
  double character_coverage = 0.9995;
  std::string normalization = "nmt_nfkc";  // nmt_nfkc | nfkc | nmt_nfkc_cf | nfkc_cf | identity
  bool byte_fallback = false;   // unknown characters become <0xNN> byte pieces (lossless)
  bool keep_whitespace = false;  // keep whitespace runs and leading/trailing spaces as written
  bool split_digits = false;
  int threads = 2;
  int seed_sentences = 1000000;  // input_sentence_size: sentences sampled for training (0 = all)
};

// Trains a model and writes it to options.out; throws vimo::Error with SentencePiece's message.
void train_sentencepiece(const SentencePieceTrainOptions& options);
// The same on `lines` (one sentence each; options.input is ignored): the corpus is written beside
// options.out under a temporary name and removed afterwards.
void train_sentencepiece_on(const std::vector<std::string>& lines, SentencePieceTrainOptions options);

}  // namespace vimo::text

// SentencePiece backend: a thin wrapper that turns libsentencepiece statuses into vimo errors.
#include "vimo/text/sentencepiece.h"

#include <cstdio>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "vimo/core/error.h"
#include "vimo/core/fs.h"

namespace vimo::text {

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path)
    : path_(path), sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto st = sp_->Load(path);
  VIMO_CHECK(st.ok(), "cannot load SentencePiece model '" + path + "': " + st.ToString() +
                          " (expected a .model file written by spm_train or `vimo text train`)");
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text, "text given to SentencePiece model '" + path_ + "'");
  std::vector<int> ids;
  const auto st = sp_->Encode(absl::string_view(text.data(), text.size()), &ids);
  VIMO_CHECK(st.ok(), "SentencePiece encode failed ('" + path_ + "'): " + st.ToString());
  if (add_special) {
    if (sp_->bos_id() >= 0) ids.insert(ids.begin(), sp_->bos_id());
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  const int n = sp_->GetPieceSize();
  std::vector<int> keep;
  keep.reserve(ids.size());
  for (int id : ids) {
    VIMO_CHECK(id >= 0 && id < n, "id " + std::to_string(id) + " is outside the vocabulary of '" + path_ +
                                      "' (0.." + std::to_string(n - 1) + ")");
    if (skip_special && sp_->IsControl(id)) continue;
    keep.push_back(id);
  }
  std::string out;
  const auto st = sp_->Decode(keep, &out);
  VIMO_CHECK(st.ok(), "SentencePiece decode failed ('" + path_ + "'): " + st.ToString());
  return utf8_lossy(out);
}

int SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::string SentencePieceTokenizer::id_to_token(int id) const {
  VIMO_CHECK(id >= 0 && id < vocab_size(), "id " + std::to_string(id) + " is outside the vocabulary of '" + path_ + "'");
  return sp_->IdToPiece(id);
}

std::optional<int> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(absl::string_view(token.data(), token.size()));
  // PieceToId answers unk_id for unknown pieces; only the unk piece itself maps to it.
  if (id == sp_->unk_id() && sp_->IdToPiece(id) != token) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int id) const { return sp_->IsControl(id) || sp_->IsUnknown(id); }

std::optional<int> SentencePieceTokenizer::bos_id() const {
  return sp_->bos_id() >= 0 ? std::optional<int>(sp_->bos_id()) : std::nullopt;
}
std::optional<int> SentencePieceTokenizer::eos_id() const {
  return sp_->eos_id() >= 0 ? std::optional<int>(sp_->eos_id()) : std::nullopt;
}

void train_sentencepiece(const SentencePieceTrainOptions& o) {
  VIMO_CHECK(o.model_type == "unigram" || o.model_type == "bpe",
             "--model-type must be unigram or bpe, not '" + o.model_type + "'");
  VIMO_CHECK(o.vocab_size > 0, "--vocab-size must be positive");
  VIMO_CHECK(!o.out.empty(), "--out (the .model file to write) is required");
  check_utf8(core::read_file(o.input), "training corpus '" + o.input + "'");
  std::unordered_map<std::string, std::string> args = {
      {"input", o.input},
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"normalization_rule_name", o.normalization},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"split_digits", o.split_digits ? "true" : "false"},
      {"remove_extra_whitespaces", o.keep_whitespace ? "false" : "true"},
      {"num_threads", std::to_string(o.threads)},
      {"input_sentence_size", std::to_string(o.seed_sentences)},
      {"shuffle_input_sentence", "true"},
      {"minloglevel", "1"},
  };
  if (o.keep_whitespace) args["allow_whitespace_only_pieces"] = "true";
  std::string model;
  const auto st = sentencepiece::SentencePieceTrainer::Train(args, nullptr, &model);
  VIMO_CHECK(st.ok(), "SentencePiece training on '" + o.input + "' failed: " + st.ToString());
  core::write_file_atomic(o.out, model);
}

void train_sentencepiece_on(const std::vector<std::string>& lines, SentencePieceTrainOptions o) {
  VIMO_CHECK(!lines.empty(), "no sentences to train the text tokenizer '" + o.out + "' on");
  std::string corpus;
  for (const auto& l : lines) corpus += l + "\n";
  o.input = o.out + ".corpus.tmp";
  core::write_file_atomic(o.input, corpus);
  try {
    train_sentencepiece(o);
  } catch (...) {
    std::remove(o.input.c_str());
    throw;
  }
  std::remove(o.input.c_str());
}

}  // namespace vimo::text

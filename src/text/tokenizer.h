// The tokenizer that turns rule-processed text into ids: a SentencePiece subword model with
// fastai's special tokens at fixed ids, or a word vocabulary (fastai's itos list).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "text/rules.h"
#include "text/tokenizer_kind.h"
#include "util/status.h"

namespace ulmfit {

class SpmModel;
class WordVocab;

// Copies share one immutable model, so a Tokenizer is cheap to copy and safe to use from many
// threads at once.
//
// SentencePiece: the nine kSpecialTokens get ids 0..8 and each encodes as one whole piece.
// They are stored with SentencePiece's word-boundary mark, as "▁xxbos" (fastai's trick), so
// "xxbos xxmaj hello" encodes as [▁xxbos, ▁xxmaj, ▁hello] with no lone "▁" piece. "▁xxunk" is
// SentencePiece's unknown piece (id 0) and "▁xxpad" its padding piece (id 1); the other seven are
// user-defined symbols. SentencePiece never matches unk/pad pieces in text, so Encode maps the
// words "xxunk" and "xxpad" to ids 0 and 1 itself. Raw text goes through ApplyRules.
//
// Words (kind() == kWords): token i of the vocabulary has id i. xxunk is id 0 and xxpad id 1
// (kUnkId, kPadId), as in fastai's vocabularies; the other special tokens may sit anywhere (v1
// and v2 order them differently), so ask SpecialTokenId rather than using kBosId and friends.
// Raw text goes through FastaiWordTokens (text/word_tokenizer.h); the vocabulary file format is
// described in text/word_vocab.h.
class Tokenizer {
 public:
  // Trains a SentencePiece model on already rule-processed documents and writes it to
  // model_path (plus the vocabulary as model_path with ".vocab" for ".model"). Long documents are
  // cut into pieces of at most ~4 KB at spaces (SentencePiece skips longer sentences); these are
  // sampled deterministically with `seed` down to config.max_training_sentences.
  static absl::StatusOr<Tokenizer> Train(const std::vector<std::string>& processed_docs,
                                         const TextConfig& config, const std::string& model_path,
                                         uint64_t seed);
  // Loads a SentencePiece .model file or a word vocabulary file, told apart by their first
  // bytes; errors if it is missing or corrupt, or if the special tokens are not as described
  // above.
  static absl::StatusOr<Tokenizer> Load(const std::string& model_path);
  // Same checks as Load, from the file's bytes; `model_path` is only recorded (and used in
  // errors).
  static absl::StatusOr<Tokenizer> FromSerialized(std::string serialized_model,
                                                  const std::string& model_path);
  // A word tokenizer over `itos` (token i has id i), with the checks of WordVocab::Create;
  // `path` is recorded and named in errors, nothing is written.
  static absl::StatusOr<Tokenizer> FromWordVocabulary(std::vector<std::string> itos,
                                                      const std::string& path);
  // Writes a word tokenizer's vocabulary to `path` (atomically); an error for SentencePiece.
  absl::Status SaveWordVocabulary(const std::string& path) const;

  TokenizerKind kind() const { return kind_; }

  // SentencePiece: the pieces of rule-processed text. Words: the text split at single spaces
  // (empty pieces skipped), each token's id or xxunk's; tokens that contain spaces (spaCy's
  // whitespace tokens) cannot be expressed this way, so the pipeline uses EncodeTokens.
  std::vector<int32_t> Encode(std::string_view processed_text) const;
  // Appends the ids of `processed_text` to `ids`.
  void EncodeTo(std::string_view processed_text, std::vector<int32_t>* ids) const;
  // Appends the ids of a token list: words map one to one (unknown -> xxunk); SentencePiece
  // encodes the tokens joined by spaces.
  void EncodeTokens(const std::vector<std::string>& tokens, std::vector<int32_t>* ids) const;
  // SentencePiece: pieces joined, "▁" turned into spaces, the leading space dropped:
  // Decode(Encode(t)) == t for rule-processed text made of characters the model covers.
  // Words: tokens joined with single spaces. Ids out of range decode as xxunk.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  std::string IdToPiece(int id) const;
  // -1 when `piece` is not in the vocabulary.
  int PieceToId(const std::string& piece) const;
  // The id of kSpecialTokens[index] (e.g. SpecialTokenId(kBosId)): `index` itself for
  // SentencePiece, looked up by name for a word vocabulary.
  int SpecialTokenId(int index) const { return special_ids_[index]; }
  const std::string& model_path() const { return model_path_; }
  // The file's bytes (for hashing and saving with checkpoints): the SentencePiece .model, or the
  // word vocabulary file in its canonical form (Load(path) of a copy gives the same tokenizer).
  std::string SerializedModel() const { return *serialized_; }

 private:
  Tokenizer() = default;
  static Tokenizer FromWords(WordVocab vocab, const std::string& path);

  TokenizerKind kind_ = TokenizerKind::kSentencePiece;
  std::shared_ptr<const SpmModel> model_;   // SentencePiece only
  std::shared_ptr<const WordVocab> words_;  // words only
  std::array<int, kNumSpecialTokens> special_ids_ = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  std::shared_ptr<const std::string> serialized_;
  std::string model_path_;
};

// The vocabulary file that Train writes next to `model_path`.
std::string VocabPathFor(const std::string& model_path);

}  // namespace ulmfit

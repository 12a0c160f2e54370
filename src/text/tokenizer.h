// The SentencePiece subword tokenizer with fastai's special tokens at fixed ids.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "util/status.h"

namespace ulmfit {

class SpmModel;

// Copies share one immutable model, so a Tokenizer is cheap to copy and safe to use from many
// threads at once.
//
// Special tokens: the nine kSpecialTokens get ids 0..8 and each encodes as one whole piece.
// They are stored with SentencePiece's word-boundary mark, as "▁xxbos" (fastai's trick), so
// "xxbos xxmaj hello" encodes as [▁xxbos, ▁xxmaj, ▁hello] with no lone "▁" piece. "▁xxunk" is
// SentencePiece's unknown piece (id 0) and "▁xxpad" its padding piece (id 1); the other seven are
// user-defined symbols. SentencePiece never matches unk/pad pieces in text, so Encode maps the
// words "xxunk" and "xxpad" to ids 0 and 1 itself.
class Tokenizer {
 public:
  // Trains a SentencePiece model on already rule-processed documents and writes it to
  // model_path (plus the vocabulary as model_path with ".vocab" for ".model"). Long documents are
  // cut into pieces of at most ~4 KB at spaces (SentencePiece skips longer sentences); these are
  // sampled deterministically with `seed` down to config.max_training_sentences.
  static absl::StatusOr<Tokenizer> Train(const std::vector<std::string>& processed_docs,
                                         const TextConfig& config, const std::string& model_path,
                                         uint64_t seed);
  // Loads a .model file; errors if it is missing, corrupt, or lacks the special tokens at 0..8.
  static absl::StatusOr<Tokenizer> Load(const std::string& model_path);
  // Same checks as Load, from model bytes; `model_path` is only recorded (and used in errors).
  static absl::StatusOr<Tokenizer> FromSerialized(std::string serialized_model,
                                                  const std::string& model_path);

  std::vector<int32_t> Encode(std::string_view processed_text) const;
  // Appends the ids of `processed_text` to `ids`.
  void EncodeTo(std::string_view processed_text, std::vector<int32_t>* ids) const;
  // Pieces joined, "▁" turned into spaces, the leading space dropped: Decode(Encode(t)) == t for
  // rule-processed text made of characters the model covers.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const;
  std::string IdToPiece(int id) const;
  // -1 when `piece` is not in the vocabulary.
  int PieceToId(const std::string& piece) const;
  const std::string& model_path() const { return model_path_; }
  // The .model file's bytes (for hashing and saving with checkpoints).
  std::string SerializedModel() const { return *serialized_; }

 private:
  Tokenizer() = default;

  std::shared_ptr<const SpmModel> model_;
  std::shared_ptr<const std::string> serialized_;
  std::string model_path_;
};

// The vocabulary file that Train writes next to `model_path`.
std::string VocabPathFor(const std::string& model_path);

}  // namespace ulmfit

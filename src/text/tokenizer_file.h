// Where a tokenizer lives in a run's tokenizer/ folder or a model directory: a SentencePiece
// model (spm.model) or a word vocabulary (words.vocab, text/word_vocab.h).
#pragma once

#include <filesystem>
#include <string>

namespace ulmfit {

inline constexpr const char* kSentencePieceFile = "spm.model";
inline constexpr const char* kWordVocabularyFile = "words.vocab";
// A word vocabulary keeps the words seen at least this often (fastai's Vocab.create min_freq).
inline constexpr int kWordMinFrequency = 2;

// The tokenizer file in `dir`: spm.model, else words.vocab; spm.model's path when neither
// exists, so that errors name the usual file.
inline std::string TokenizerFileIn(const std::string& dir) {
  const std::filesystem::path words = std::filesystem::path(dir) / kWordVocabularyFile;
  const std::filesystem::path spm = std::filesystem::path(dir) / kSentencePieceFile;
  return !std::filesystem::exists(spm) && std::filesystem::exists(words) ? words.string()
                                                                         : spm.string();
}

}  // namespace ulmfit

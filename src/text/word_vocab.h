// A word vocabulary (fastai's itos list) and its file format.
//
// File format, UTF-8 text:
//   line 1       exactly "# ulmfit word vocabulary v1"
//   line i + 2   token i (so token 0, which must be xxunk, is on line 2)
// Every line is escaped so that it holds no whitespace or control characters: "\\" is a
// backslash, "\s" a space, "\n" a newline, "\t" a tab, "\r" a carriage return, "\uXXXX" (four
// hex digits) any other whitespace or control character (U+0000-001F, U+007F-009F, U+00A0,
// U+2028, ...), and a line holding only "\e" the empty token. fastai's own vocabularies contain
// such tokens: spaCy keeps runs of whitespace like "\n " as tokens. Lines end with "\n"; a "\r"
// before it is ignored, as is a missing final newline. Empty lines are errors.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "util/status.h"

namespace ulmfit {

inline constexpr std::string_view kWordVocabHeader = "# ulmfit word vocabulary v1";

// True if `bytes` starts like a word vocabulary file (any version), so Tokenizer::Load can tell
// it from a SentencePiece model.
bool LooksLikeWordVocabulary(std::string_view bytes);

class WordVocab {
 public:
  // Checks what ulmfit needs: xxunk at id 0, xxpad at id 1 (kUnkId, kPadId), and the other
  // seven special tokens somewhere, in any order (fastai v1 and v2 order them differently), all
  // tokens valid UTF-8. Errors name `path`. A token that occurs twice keeps its first id.
  static absl::StatusOr<WordVocab> Create(std::vector<std::string> itos, const std::string& path);
  // Parses the file format above; errors name `path` and the line.
  static absl::StatusOr<WordVocab> Parse(std::string_view bytes, const std::string& path);
  // The file contents for this vocabulary (canonical: Parse(Serialize()) gives it back).
  std::string Serialize() const;

  int size() const { return static_cast<int>(itos_.size()); }
  const std::string& token(int id) const { return itos_[id]; }
  // -1 when absent.
  int id(std::string_view token) const;
  const std::vector<std::string>& itos() const { return itos_; }

 private:
  std::vector<std::string> itos_;
  absl::flat_hash_map<std::string, int> stoi_;
};

}  // namespace ulmfit

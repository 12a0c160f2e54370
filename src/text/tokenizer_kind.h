// Which kind of tokenizer a Tokenizer is. Kept apart from tokenizer.h so that config code can
// name the kind (text.tokenizer: sentencepiece | words) without including the tokenizer.
#pragma once

#include <string_view>

namespace ulmfit {

enum class TokenizerKind {
  kSentencePiece,  // subword pieces trained by ulmfit, text through ApplyRules (fastai v2 rules)
  kWords,          // a word vocabulary (fastai's itos), text through FastaiWordTokens (v1 rules)
};

inline std::string_view TokenizerKindName(TokenizerKind kind) {
  return kind == TokenizerKind::kWords ? "words" : "sentencepiece";
}

// False (and *kind untouched) for a name other than "sentencepiece" or "words".
inline bool ParseTokenizerKind(std::string_view name, TokenizerKind* kind) {
  if (name == "sentencepiece") {
    *kind = TokenizerKind::kSentencePiece;
  } else if (name == "words") {
    *kind = TokenizerKind::kWords;
  } else {
    return false;
  }
  return true;
}

}  // namespace ulmfit

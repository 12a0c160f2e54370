// Which kind of tokenizer a Tokenizer is: the config's text.tokenizer enum (config/enums.h),
// named here for the text code: SentencePiece pieces (text through ApplyRules, fastai v2's
// rules) or a word vocabulary (fastai's itos, text through FastaiWordTokens, v1's rules).
#pragma once

#include <string>
#include <string_view>

#include "config/enums.h"

namespace ulmfit {

inline std::string TokenizerKindName(TokenizerKind kind) { return EnumName(kind); }

// False (and *kind untouched) for a name other than "sentencepiece" or "words".
inline bool ParseTokenizerKind(std::string_view name, TokenizerKind* kind) {
  return ParseEnum(name, kind);
}

}  // namespace ulmfit

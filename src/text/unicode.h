// Small Unicode helpers for the word tokenizer: UTF-8 decoding and repair, and the character
// classes that Python's str methods and spaCy's char classes use, approximated by code-point
// ranges (no ICU here).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ulmfit::unicode {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the code point at text[*i] and advances *i past it. `text` must be valid UTF-8.
char32_t DecodeAt(std::string_view text, size_t* i);

void AppendUtf8(char32_t cp, std::string* out);

bool IsValidUtf8(std::string_view text);

// `text` with every byte that does not start a well-formed UTF-8 sequence (stray continuation
// bytes, truncated sequences, overlong forms, surrogates, values above U+10FFFF) replaced by
// U+FFFD, the replacement character; valid text comes back unchanged.
std::string ToValidUtf8(std::string_view text);

// Code points of `text` (valid UTF-8) and the byte offset of each, plus the end offset.
void Decode(std::string_view text, std::vector<char32_t>* cps, std::vector<size_t>* offsets);

// Python's str.isspace() for one character.
bool IsSpace(char32_t cp);

// Simple lowercase mapping (one code point to one code point) for ASCII, Latin-1, Latin
// Extended-A and Additional, Greek, Cyrillic, Armenian and fullwidth Latin; other characters map
// to themselves. U+0130 (İ) is handled by AppendLower.
char32_t ToLower(char32_t cp);
// Cased letters, as Python's isupper()/islower() see them, in the scripts ToLower covers.
bool IsUpper(char32_t cp);
bool IsLower(char32_t cp);
// Letters of scripts without case (Hebrew, Arabic, Indic scripts, Thai, Hangul, kana, CJK) and
// Latin Extended-B, whose case pairs are irregular.
bool IsUncasedLetter(char32_t cp);
inline bool IsAlpha(char32_t cp) { return IsUpper(cp) || IsLower(cp) || IsUncasedLetter(cp); }
inline bool IsAsciiDigit(char32_t cp) { return cp >= '0' && cp <= '9'; }
// Python's regex \w: letters, digits and underscore; non-ASCII characters count unless they are
// spaces, punctuation, symbols, emoji or combining marks.
bool IsWordChar(char32_t cp);

// Appends the lowercase of `text` (valid UTF-8).
void AppendLower(std::string_view text, std::string* out);

}  // namespace ulmfit::unicode

#include "text/unicode.h"

namespace ulmfit::unicode {
namespace {

inline bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629 table), or 0.
size_t ValidSequenceLength(std::string_view text, size_t i) {
  const unsigned char c = text[i];
  if (c < 0x80) return 1;
  const size_t left = text.size() - i;
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && IsContinuation(byte(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3 || !IsContinuation(byte(1)) || !IsContinuation(byte(2))) return 0;
    if (c == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && byte(1) >= 0xA0) return 0;  // UTF-16 surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4 || !IsContinuation(byte(1)) || !IsContinuation(byte(2)) ||
        !IsContinuation(byte(3))) {
      return 0;
    }
    if (c == 0xF0 && byte(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

inline bool InRange(char32_t cp, char32_t lo, char32_t hi) { return cp >= lo && cp <= hi; }

// Lower-case partners in the ranges where upper and lower case alternate (even = upper).
bool IsAlternatingUpper(char32_t cp) {
  if (cp % 2 != 0) return false;
  return InRange(cp, 0x100, 0x136) || InRange(cp, 0x14A, 0x176) || InRange(cp, 0x460, 0x480) ||
         InRange(cp, 0x48A, 0x4BE) || InRange(cp, 0x4D0, 0x4FE) || InRange(cp, 0x1E00, 0x1E94) ||
         InRange(cp, 0x1EA0, 0x1EFE);
}

// Same, odd = upper.
bool IsOddAlternatingUpper(char32_t cp) {
  if (cp % 2 == 0) return false;
  return InRange(cp, 0x139, 0x147) || InRange(cp, 0x179, 0x17D) || InRange(cp, 0x4C1, 0x4CD);
}

}  // namespace

char32_t DecodeAt(std::string_view text, size_t* i) {
  const unsigned char c = text[*i];
  auto cont = [&](size_t k) { return static_cast<char32_t>(text[*i + k] & 0x3F); };
  char32_t cp;
  size_t len;
  if (c < 0x80) {
    cp = c, len = 1;
  } else if (c < 0xE0) {
    cp = ((c & 0x1F) << 6) | cont(1), len = 2;
  } else if (c < 0xF0) {
    cp = ((c & 0x0F) << 12) | (cont(1) << 6) | cont(2), len = 3;
  } else {
    cp = ((c & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3), len = 4;
  }
  *i += len;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t len = ValidSequenceLength(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string ToValidUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    const size_t len = ValidSequenceLength(text, i);
    if (len == 0) {
      AppendUtf8(kReplacementChar, &out);
      ++i;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

void Decode(std::string_view text, std::vector<char32_t>* cps, std::vector<size_t>* offsets) {
  cps->clear();
  offsets->clear();
  for (size_t i = 0; i < text.size();) {
    offsets->push_back(i);
    cps->push_back(DecodeAt(text, &i));
  }
  offsets->push_back(text.size());
}

bool IsSpace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || InRange(cp, 0x09, 0x0D) || InRange(cp, 0x1C, 0x1F);
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || InRange(cp, 0x2000, 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

char32_t ToLower(char32_t cp) {
  if (cp < 0x80) return InRange(cp, 'A', 'Z') ? cp + 32 : cp;
  if (InRange(cp, 0xC0, 0xDE) && cp != 0xD7) return cp + 32;
  if (cp == 0x130) return 'i';  // İ; AppendLower adds the combining dot
  if (IsAlternatingUpper(cp) || IsOddAlternatingUpper(cp)) return cp + 1;
  if (cp == 0x178) return 0xFF;
  if (InRange(cp, 0x391, 0x3AB) && cp != 0x3A2) return cp + 0x20;
  if (cp == 0x386) return 0x3AC;
  if (InRange(cp, 0x388, 0x38A)) return cp + 37;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 63;
  if (InRange(cp, 0x400, 0x40F)) return cp + 0x50;
  if (InRange(cp, 0x410, 0x42F)) return cp + 0x20;
  if (cp == 0x4C0) return 0x4CF;
  if (InRange(cp, 0x531, 0x556)) return cp + 0x30;  // Armenian
  if (cp == 0x1E9E) return 0xDF;                      // capital sharp s
  if (InRange(cp, 0xFF21, 0xFF3A)) return cp + 0x20;  // fullwidth Latin
  return cp;
}

bool IsUpper(char32_t cp) { return cp >= 'A' && ToLower(cp) != cp; }

bool IsLower(char32_t cp) {
  if (cp < 0x80) return InRange(cp, 'a', 'z');
  if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) return true;
  if (cp < 0x100) return cp >= 0xDF && cp != 0xF7;
  if (cp < 0x180) return !IsUpper(cp);  // Latin Extended-A is all letters
  if (InRange(cp, 0x250, 0x2AF)) return true;  // IPA
  if (cp == 0x390 || InRange(cp, 0x3AC, 0x3CE)) return true;
  if (InRange(cp, 0x430, 0x45F) || cp == 0x4CF) return true;
  if (InRange(cp, 0x561, 0x587)) return true;
  if (InRange(cp, 0x1E96, 0x1E9D) || cp == 0x1E9F) return true;
  if (InRange(cp, 0xFF41, 0xFF5A)) return true;
  // Lower partners of the alternating ranges.
  return (InRange(cp, 0x460, 0x4FF) || InRange(cp, 0x1E00, 0x1EFF)) && cp > 0 && !IsUpper(cp) &&
         ToLower(cp - 1) == cp;
}

bool IsUncasedLetter(char32_t cp) {
  if (cp < 0x180) return false;
  return InRange(cp, 0x180, 0x24F) ||    // Latin Extended-B
         InRange(cp, 0x5D0, 0x5F2) ||    // Hebrew
         InRange(cp, 0x620, 0x64A) || InRange(cp, 0x66E, 0x6D3) || InRange(cp, 0x6FA, 0x6FF) ||
         InRange(cp, 0x750, 0x77F) ||    // Arabic
         InRange(cp, 0x900, 0xDFF) ||    // Devanagari .. Sinhala (marks included, as spaCy)
         InRange(cp, 0xE01, 0xE30) ||    // Thai
         InRange(cp, 0x1100, 0x11FF) || InRange(cp, 0xAC00, 0xD7AF) ||  // Hangul
         InRange(cp, 0x3041, 0x30FF) ||  // kana
         InRange(cp, 0x3400, 0x4DBF) || InRange(cp, 0x4E00, 0x9FFF) || InRange(cp, 0xF900, 0xFAFF) ||
         InRange(cp, 0x20000, 0x2FA1F);  // CJK ideographs
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return InRange(cp, '0', '9') || InRange(cp, 'a', 'z') || InRange(cp, 'A', 'Z') || cp == '_';
  }
  if (cp < 0xC0) {
    return cp == 0xAA || cp == 0xB2 || cp == 0xB3 || cp == 0xB5 || cp == 0xB9 || cp == 0xBA ||
           InRange(cp, 0xBC, 0xBE);
  }
  if (cp == 0xD7 || cp == 0xF7 || IsSpace(cp)) return false;
  return !(InRange(cp, 0x300, 0x36F) ||      // combining marks
           InRange(cp, 0x2000, 0x2BFF) ||    // punctuation, symbols, arrows, math, dingbats
           InRange(cp, 0x2E00, 0x2E7F) ||    // supplemental punctuation
           InRange(cp, 0x3000, 0x3004) || InRange(cp, 0x3008, 0x3020) ||  // CJK punctuation
           InRange(cp, 0xFE00, 0xFE0F) || InRange(cp, 0xFE30, 0xFE4F) ||
           InRange(cp, 0xFF00, 0xFF0F) || InRange(cp, 0xFF1A, 0xFF20) ||
           InRange(cp, 0xFF3B, 0xFF40) || InRange(cp, 0xFF5B, 0xFF65) ||
           InRange(cp, 0xFFF0, 0xFFFF) ||    // specials, U+FFFD among them
           InRange(cp, 0x1F000, 0x1FAFF) ||  // emoji and other pictographs
           InRange(cp, 0xE0000, 0xE007F));   // tags
}

void AppendLower(std::string_view text, std::string* out) {
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = text[i];
    if (c < 0x80) {
      out->push_back(InRange(c, 'A', 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c));
      ++i;
      continue;
    }
    const size_t start = i;
    const char32_t cp = DecodeAt(text, &i);
    if (cp == 0x130) {  // İ lowercases to i + combining dot above, as in Python
      out->push_back('i');
      AppendUtf8(0x307, out);
      continue;
    }
    const char32_t lower = ToLower(cp);
    if (lower == cp) {
      out->append(text.data() + start, i - start);
    } else {
      AppendUtf8(lower, out);
    }
  }
}

}  // namespace ulmfit::unicode

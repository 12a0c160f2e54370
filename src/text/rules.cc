#include "text/rules.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "text/unicode.h"

namespace ulmfit {
namespace {

// Length of the UTF-8 sequence that starts with `lead`; invalid lead bytes count as 1 so that
// scanning always advances (the corpus reader has already rejected invalid UTF-8).
inline size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0 && lead <= 0xF7) return 4;
  if (lead >= 0xE0) return lead <= 0xEF ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

inline bool IsAsciiSpace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// Length of a whitespace character at text[i] (ASCII or the common Unicode spaces that
// Python's \s matches), or 0.
inline size_t SpaceLength(std::string_view text, size_t i) {
  unsigned char c = text[i];
  if (IsAsciiSpace(c)) return 1;
  if (c < 0xC2) return 0;
  size_t left = text.size() - i;
  unsigned char c1 = left > 1 ? text[i + 1] : 0;
  if (c == 0xC2) return (c1 == 0xA0 || c1 == 0x85) ? 2 : 0;  // NBSP, NEL
  if (left < 3) return 0;
  unsigned char c2 = text[i + 2];
  if (c == 0xE2 && c1 == 0x80 && (c2 <= 0x8A || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF)) {
    return 3;  // U+2000..U+200A, line/paragraph separators, narrow NBSP
  }
  if (c == 0xE2 && c1 == 0x81 && c2 == 0x9F) return 3;  // U+205F
  if (c == 0xE3 && c1 == 0x80 && c2 == 0x80) return 3;  // U+3000 ideographic space
  return 0;
}

inline bool IsWordByte(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c >= 0x80;
}

inline bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
inline bool IsLower(unsigned char c) { return c >= 'a' && c <= 'z'; }

// Lowercase of a code point in the two-byte range; every mapping stays two bytes long.
inline uint32_t LowerTwoByte(uint32_t cp) {
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
  if (cp >= 0x100 && cp <= 0x17F) {
    if (cp == 0x130) return cp;  // İ lowercases to two code points; keep it
    if (cp == 0x178) return 0xFF;
    bool even = (cp % 2) == 0;
    if ((cp <= 0x137 || (cp >= 0x14A && cp <= 0x177)) && even) return cp + 1;
    if (((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) && !even) return cp + 1;
    return cp;
  }
  if (cp >= 0x386 && cp <= 0x3AB) {
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 0x20;
    if (cp == 0x386) return 0x3AC;
    if (cp >= 0x388 && cp <= 0x38A) return cp + 37;
    if (cp == 0x38C) return 0x3CC;
    if (cp == 0x38E || cp == 0x38F) return cp + 63;
    return cp;
  }
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  return cp;
}

// Replaces every occurrence of `from`; copies only when there is a match.
void ReplaceAll(std::string* text, std::string_view from, std::string_view to) {
  size_t pos = text->find(from);
  if (pos == std::string::npos) return;
  std::string out;
  out.reserve(text->size() + (to.size() > from.size() ? text->size() / 4 : 0));
  size_t start = 0;
  while (pos != std::string::npos) {
    out.append(*text, start, pos - start);
    out.append(to);
    start = pos + from.size();
    pos = text->find(from, start);
  }
  out.append(*text, start, std::string::npos);
  text->swap(out);
}

// Windows-1252 meanings of &#128;..&#159;, which Python's html.unescape applies too.
constexpr uint16_t kCp1252[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                  0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

// Decodes the entity starting at text[i] == '&' into `out`; returns its length or 0.
size_t UnescapeEntity(std::string_view text, size_t i, std::string* out) {
  size_t semi = text.find(';', i + 1);
  if (semi == std::string_view::npos || semi - i > 12) return 0;
  std::string_view name = text.substr(i + 1, semi - i - 1);
  size_t length = semi - i + 1;
  static constexpr std::pair<std::string_view, char> kNamed[] = {
      {"lt", '<'}, {"gt", '>'}, {"amp", '&'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& [entity, c] : kNamed) {
    if (name == entity) {
      out->push_back(c);
      return length;
    }
  }
  if (name.size() < 2 || name[0] != '#') return 0;
  bool hex = name[1] == 'x' || name[1] == 'X';
  std::string_view digits = name.substr(hex ? 2 : 1);
  if (digits.empty()) return 0;
  uint32_t cp = 0;
  for (char c : digits) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (hex && c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (hex && c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return 0;
    }
    cp = cp * (hex ? 16 : 10) + d;
    if (cp > 0x10FFFF) cp = 0x110000;  // saturate; replaced below
  }
  if (cp >= 0x80 && cp <= 0x9F) cp = kCp1252[cp - 0x80];
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  unicode::AppendUtf8(static_cast<char32_t>(cp), out);
  return length;
}

// Collapses whitespace to single spaces and applies replace_rep. Output starts and ends with
// non-space text or is empty; multi-byte characters are compared whole.
std::string CollapseAndReplaceRep(std::string_view text, bool replace_rep) {
  std::string out;
  out.reserve(text.size() + 16);
  bool pending_space = false;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    size_t space = SpaceLength(text, i);
    if (space > 0) {
      pending_space = !out.empty();
      i += space;
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    size_t len = std::min(SequenceLength(text[i]), n - i);
    size_t count = 1;
    if (replace_rep) {
      while (i + (count + 1) * len <= n &&
             std::memcmp(text.data() + i, text.data() + i + count * len, len) == 0) {
        ++count;
      }
    }
    if (count >= 3) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
      out.append("xxrep ");
      out.append(std::to_string(count));
      out.push_back(' ');
      out.append(text.data() + i, len);
      pending_space = true;
    } else {
      out.append(text.data() + i, count * len);
    }
    i += count * len;
  }
  return out;
}

std::vector<std::string_view> SplitSpaces(std::string_view text) {
  std::vector<std::string_view> tokens;
  tokens.reserve(text.size() / 5 + 1);
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    if (end > i) tokens.push_back(text.substr(i, end - i));
    i = end + 1;
  }
  return tokens;
}

bool IsWord(std::string_view token) {
  for (unsigned char c : token) {
    if (!IsWordByte(c)) return false;
  }
  return !token.empty();
}

// Appends tokens to the output, applying spec_add_spaces, the case rules and lowercase.
class Emitter {
 public:
  Emitter(const RuleOptions& options, std::string* out) : options_(options), out_(out) {}

  void Word(std::string_view word) {
    size_t start = 0;
    for (size_t i = 0; i < word.size(); ++i) {
      char c = word[i];
      if (c == '/' || c == '#' || c == '\\') {
        if (i > start) Token(word.substr(start, i - start));
        Token(word.substr(i, 1));
        start = i + 1;
      }
    }
    if (start < word.size()) Token(word.substr(start));
  }

 private:
  void Token(std::string_view token) {
    out_->push_back(' ');
    if (IsUpper(token[0])) {
      bool has_lower = false, rest_has_upper = false;
      for (size_t i = 0; i < token.size(); ++i) {
        unsigned char c = token[i];
        has_lower |= IsLower(c);
        if (i > 0) rest_has_upper |= IsUpper(c);
      }
      // fastai's replace_all_caps / replace_maj lowercase the word they mark, whatever the
      // lowercase option; a one-character word gets no marker.
      if (!has_lower || !rest_has_upper) {
        if (token.size() > 1) out_->append(has_lower ? "xxmaj " : "xxup ");
        AppendLowercase(token, out_);
        return;
      }
    }
    if (options_.lowercase) {
      AppendLowercase(token, out_);
    } else {
      out_->append(token);
    }
  }

  const RuleOptions& options_;
  std::string* out_;
};

}  // namespace

void AppendLowercase(std::string_view text, std::string* out) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = text[i];
    if (c < 0x80) {
      out->push_back(IsUpper(c) ? static_cast<char>(c + 32) : static_cast<char>(c));
      ++i;
      continue;
    }
    size_t len = std::min(SequenceLength(c), n - i);
    if (len == 2 && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      uint32_t cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      uint32_t lower = cp >= 0x80 ? LowerTwoByte(cp) : cp;  // cp < 0x80: overlong, keep bytes
      if (lower != cp) {
        unicode::AppendUtf8(static_cast<char32_t>(lower), out);
      } else {
        out->append(text.data() + i, 2);
      }
    } else {
      out->append(text.data() + i, len);
    }
    i += len;
  }
}

std::string FixHtml(std::string_view text) {
  std::string s(text);
  // Same replacements, in the same order, as fastai's fix_html.
  // clang-format off
  static constexpr std::pair<std::string_view, std::string_view> kReplacements[] = {
      {"#39;", "'"},       {"amp;", "&"},    {"#146;", "'"},  {"nbsp;", " "},  {"#36;", "$"},
      {"\\n", "\n"},       {"quot;", "'"},   {"<br />", "\n"}, {"\\\"", "\""}, {"<unk>", "xxunk"},
      {" @.@ ", "."},      {" @-@ ", "-"},   {" @,@ ", ","},  {"\\", " \\ "}};
  // clang-format on
  for (const auto& [from, to] : kReplacements) ReplaceAll(&s, from, to);
  // html.unescape, limited to the entities that occur in practice.
  size_t amp = s.find('&');
  if (amp == std::string::npos) return s;
  std::string out;
  out.reserve(s.size());
  out.append(s, 0, amp);
  for (size_t i = amp; i < s.size();) {
    if (s[i] == '&') {
      size_t used = UnescapeEntity(s, i, &out);
      if (used > 0) {
        i += used;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

std::string ApplyRules(std::string_view text, const RuleOptions& options) {
  std::string out;
  out.reserve(text.size() + text.size() / 8 + 16);
  out.append(kSpecialTokens[kBosId]);
  if (!options.rules) {
    std::string collapsed = CollapseAndReplaceRep(text, /*replace_rep=*/false);
    if (collapsed.empty()) return out;
    out.push_back(' ');
    if (options.lowercase) {
      AppendLowercase(collapsed, &out);
    } else {
      out.append(collapsed);
    }
    return out;
  }

  std::string fixed = FixHtml(text);
  std::string spaced = CollapseAndReplaceRep(fixed, /*replace_rep=*/true);
  std::vector<std::string_view> tokens = SplitSpaces(spaced);
  Emitter emit(options, &out);
  // replace_wrep: a whole word W followed by W repeated at least twice more; the last copy may
  // carry trailing punctuation ("no no no!"), as in fastai's regex (\s|\W|$) ending.
  const size_t n = tokens.size();
  size_t i = 0;
  while (i < n) {
    std::string_view word = tokens[i];
    if (!IsWord(word)) {
      emit.Word(word);
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < n && tokens[j] == word) ++j;
    size_t count = j - i;
    std::string_view rest;
    if (j < n && count >= 2 && tokens[j].size() > word.size() &&
        tokens[j].compare(0, word.size(), word) == 0 && !IsWordByte(tokens[j][word.size()])) {
      rest = tokens[j].substr(word.size());
      ++count;
      ++j;
    }
    if (count < 3) {
      emit.Word(word);
      ++i;
      continue;
    }
    emit.Word(kSpecialTokens[kWrepId]);
    emit.Word(std::to_string(count));
    emit.Word(word);
    if (!rest.empty()) emit.Word(rest);
    i = j;
  }
  return out;
}

}  // namespace ulmfit

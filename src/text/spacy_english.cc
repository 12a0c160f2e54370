#include "text/spacy_english.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "text/unicode.h"
#include "text/word_tokenizer.h"

namespace ulmfit {
namespace {

using unicode::IsAlpha;
using unicode::IsAsciiDigit;

// ---------------------------------------------------------------------------------------------
// The special-case table: chunk -> its tokens.

class SpecialCases {
 public:
  SpecialCases();
  // Null when `chunk` is not a special case.
  const std::vector<std::string>* Find(std::string_view chunk) const {
    if (chunk.size() > max_bytes_) return nullptr;
    auto it = table_.find(absl::string_view(chunk.data(), chunk.size()));
    return it == table_.end() ? nullptr : &it->second;
  }

 private:
  void Split(const std::string& chunk, std::vector<std::string> pieces) {
    table_[chunk] = std::move(pieces);
  }
  void Whole(const std::string& chunk) { table_[chunk] = {chunk}; }
  void AddBase();
  void AddEnglishContractions();
  void AddEnglishOther();

  absl::flat_hash_map<std::string, std::vector<std::string>> table_;
  size_t max_bytes_ = 0;
};

std::string Title(std::string word) {
  word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
  return word;
}

// spacy/lang/tokenizer_exceptions.py: BASE_EXCEPTIONS and the emoticons.
void SpecialCases::AddBase() {
  for (const char* chunk : {" ", "\t", "\\t", "\n", "\\n", "\u2014", "\u00a0", "'", "\\\")",
                            "<space>", "''", "C++", "\u00e4.", "\u00f6.", "\u00fc."}) {
    Whole(chunk);
  }
  for (char c = 'a'; c <= 'z'; ++c) Whole(std::string(1, c) + ".");
  static constexpr std::string_view kEmoticons =
      ":) :-) :)) :-)) :))) :-))) (: (-: =) (= \") :] :-] [: [-: :o) (o: :} :-} 8) 8-) (-8 ;) "
      ";-) (; (-; :( :-( :(( :-(( :((( :-((( ): )-: =( >:( :') :'-) :'( :'-( :/ :-/ =/ =| :| "
      ":-| :1 :P :-P :p :-p :O :-O :o :-o :0 :-0 :() >:o :* :-* :3 :-3 =3 :> :-> :X :-X :x "
      ":-x :D :-D ;D ;-D =D xD XD xDD XDD 8D 8-D ^_^ ^__^ ^___^ >.< >.> <.< ._. ;_; -_- -__- "
      "v.v V.V v_v V_V o_o o_O O_o O_O 0_o o_0 0_0 o.O O.o O.O o.o 0.0 o.0 0.o @_@ <3 <33 "
      "<333 </3 (^_^) (-_-) (._.) (>_<) (*_*) (\u00ac_\u00ac) \u0ca0_\u0ca0 \u0ca0\ufe35\u0ca0 "
      "(\u0ca0_\u0ca0) \u00af\\(\u30c4)/\u00af "
      "(\u256f\u00b0\u25a1\u00b0\uff09\u256f\ufe35\u253b\u2501\u253b ><(((*>";
  size_t start = 0;
  while (start < kEmoticons.size()) {
    size_t end = kEmoticons.find(' ', start);
    if (end == std::string_view::npos) end = kEmoticons.size();
    if (end > start) Whole(std::string(kEmoticons.substr(start, end - start)));
    start = end + 1;
  }
}

// spacy/lang/en/tokenizer_exceptions.py: contractions, generated for the lower-case and the
// Title-case spelling only (so "DON'T" is not split).
void SpecialCases::AddEnglishContractions() {
  for (const std::string orth : {"i", "I"}) {
    Split(orth + "'m", {orth, "'m"});
    Split(orth + "m", {orth, "m"});
    Split(orth + "'ma", {orth, "'m", "a"});
    Split(orth + "ma", {orth, "m", "a"});
  }
  auto both_cases = [](std::initializer_list<const char*> words) {
    std::vector<std::string> out;
    for (const char* w : words) {
      out.push_back(w);
      out.push_back(Title(w));
    }
    return out;
  };
  for (const std::string& orth : both_cases({"i", "you", "he", "she", "it", "we", "they"})) {
    Split(orth + "'ll", {orth, "'ll"});
    Split(orth + "ll", {orth, "ll"});
    Split(orth + "'ll've", {orth, "'ll", "'ve"});
    Split(orth + "llve", {orth, "ll", "ve"});
    Split(orth + "'d", {orth, "'d"});
    Split(orth + "d", {orth, "d"});
    Split(orth + "'d've", {orth, "'d", "'ve"});
    Split(orth + "dve", {orth, "d", "ve"});
  }
  for (const std::string& orth : both_cases({"i", "you", "we", "they"})) {
    Split(orth + "'ve", {orth, "'ve"});
    Split(orth + "ve", {orth, "ve"});
  }
  for (const std::string& orth : both_cases({"you", "we", "they"})) {
    Split(orth + "'re", {orth, "'re"});
    Split(orth + "re", {orth, "re"});
  }
  for (const std::string& orth : both_cases({"he", "she", "it"})) {
    Split(orth + "'s", {orth, "'s"});
    Split(orth + "s", {orth, "s"});
  }
  for (const std::string& orth :
       both_cases({"who", "what", "when", "where", "why", "how", "there", "that"})) {
    for (const char* ending : {"'s", "s", "'ll", "ll", "'re", "re", "'ve", "ve", "'d", "d"}) {
      Split(orth + ending, {orth, ending});
    }
    Split(orth + "'ll've", {orth, "'ll", "'ve"});
    Split(orth + "llve", {orth, "ll", "ve"});
    Split(orth + "'d've", {orth, "'d", "'ve"});
    Split(orth + "dve", {orth, "d", "ve"});
  }
  for (const std::string& verb :
       both_cases({"ca", "could", "do", "does", "did", "had", "may", "might", "must", "need",
                   "ought", "sha", "should", "wo", "would"})) {
    Split(verb + "n't", {verb, "n't"});
    Split(verb + "nt", {verb, "nt"});
    Split(verb + "n't've", {verb, "n't", "'ve"});
    Split(verb + "ntve", {verb, "nt", "ve"});
  }
  for (const std::string& verb : both_cases({"could", "might", "must", "should", "would"})) {
    Split(verb + "'ve", {verb, "'ve"});
    Split(verb + "ve", {verb, "ve"});
  }
  for (const std::string& verb :
       both_cases({"ai", "are", "is", "was", "were", "have", "has", "dare"})) {
    Split(verb + "n't", {verb, "n't"});
    Split(verb + "nt", {verb, "nt"});
  }
}

// spacy/lang/en/tokenizer_exceptions.py: the rest, then its exclusions (words such as "ill",
// "its", "well" that the contraction loops above generate but that are ordinary words).
void SpecialCases::AddEnglishOther() {
  for (const char* word : {"doin", "goin", "nothin", "nuthin", "ol", "somethin"}) {
    for (const std::string& orth : {std::string(word), Title(word)}) {
      Whole(orth);
      Whole(orth + "'");
    }
  }
  for (const char* word : {"cause", "em", "ll", "nuff"}) {
    Whole(word);
    Whole(std::string("'") + word);
  }
  for (int hour = 1; hour <= 12; ++hour) {
    for (const char* period : {"a.m.", "am", "p.m.", "pm"}) {
      Split(std::to_string(hour) + period, {std::to_string(hour), period});
    }
  }
  Split("y'all", {"y'", "all"});
  Split("yall", {"y", "all"});
  Split("how'd'y", {"how", "'d", "'y"});
  Split("How'd'y", {"How", "'d", "'y"});
  for (const std::string orth : {"not", "Not"}) {
    Split(orth + "'ve", {orth, "'ve"});
    Split(orth + "ve", {orth, "ve"});
  }
  Split("cannot", {"can", "not"});
  Split("Cannot", {"Can", "not"});
  Split("gonna", {"gon", "na"});
  Split("Gonna", {"Gon", "na"});
  Split("gotta", {"got", "ta"});
  Split("Gotta", {"Got", "ta"});
  Split("let's", {"let", "'s"});
  Split("Let's", {"Let", "'s"});
  for (const char* chunk :
       {"'S", "'s", "\u2018S", "\u2018s", "and/or", "w/o", "'re", "'Cause", "'cause", "'cos",
        "'Cos", "'coz", "'Coz", "'cuz", "'Cuz", "'bout", "ma'am", "Ma'am", "o'clock", "O'clock",
        "lovin'", "Lovin'", "lovin", "Lovin", "havin'", "Havin'", "havin", "Havin", "doin'",
        "Doin'", "doin", "Doin", "goin'", "Goin'", "goin", "Goin",
        // States, months and other abbreviations with a period.
        "Mt.", "Ak.", "Ala.", "Apr.", "Ariz.", "Ark.", "Aug.", "Calif.", "Colo.", "Conn.", "Dec.",
        "Del.", "Feb.", "Fla.", "Ga.", "Ia.", "Id.", "Ill.", "Ind.", "Jan.", "Jul.", "Jun.", "Kan.",
        "Kans.", "Ky.", "La.", "Mar.", "Mass.", "May.", "Mich.", "Minn.", "Miss.", "N.C.", "N.D.",
        "N.H.", "N.J.", "N.M.", "N.Y.", "Neb.", "Nebr.", "Nev.", "Nov.", "Oct.", "Okla.", "Ore.",
        "Pa.", "S.C.", "Sep.", "Sept.", "Tenn.", "Va.", "Wash.", "Wis.", "'d", "a.m.", "Adm.",
        "Bros.", "co.", "Co.", "Corp.", "D.C.", "Dr.", "e.g.", "E.g.", "E.G.", "Gen.", "Gov.",
        "i.e.", "I.e.", "I.E.", "Inc.", "Jr.", "Ltd.", "Md.", "Messrs.", "Mo.", "Mont.", "Mr.",
        "Mrs.", "Ms.", "p.m.", "Ph.D.", "Rep.", "Rev.", "Sen.", "St.", "vs."}) {
    Whole(chunk);
  }
  for (const char* word : {"Ill", "ill", "Its", "its", "Hell", "hell", "Shell", "shell", "Shed",
                           "shed", "were", "Were", "Well", "well", "Whore", "whore"}) {
    table_.erase(word);
  }
}

SpecialCases::SpecialCases() {
  AddBase();
  AddEnglishContractions();
  AddEnglishOther();
  // fastai/text/transform.py: SpacyTokenizer.add_special_cases(defaults.text_spec_tok).
  for (std::string_view token : kFastaiV1SpecialTokens) Whole(std::string(token));
  for (const auto& [chunk, pieces] : table_) max_bytes_ = std::max(max_bytes_, chunk.size());
}

const SpecialCases& Specials() {
  static const SpecialCases* const specials = new SpecialCases();
  return *specials;
}

// ---------------------------------------------------------------------------------------------
// Character classes of spacy/lang/char_classes.py (2.0).

bool Among(char32_t cp, std::u32string_view set) {
  return set.find(cp) != std::u32string_view::npos;
}

// _punct, one character each ("……" is handled where it matters, as a suffix).
bool IsPunct(char32_t cp) {
  return Among(cp, U"\u2026,:;!?\u00bf\u00a1()[]{}<>_#*&\u3002\uff1f\uff01\uff0c\u3001\uff1b"
                   U"\uff1a\uff5e\u00b7\u0964");
}

// _quotes, one character each; '' `` ‘‘ ’’ are handled by the callers.
bool IsQuote(char32_t cp) {
  return Among(cp, U"'\"\u201d\u201c`\u2018\u00b4\u201a,\u201e\u00bb\u00ab\u300c\u300d\u300e"
                   U"\u300f\uff08\uff09\u3014\u3015\u3010\u3011\u300a\u300b\u3008\u3009");
}

bool IsCurrencySymbol(char32_t cp) { return Among(cp, U"$\u00a3\u20ac\u00a5\u0e3f"); }

// The characters before which "." is a suffix: 0-9, lower-case letters, %²-)]+ and the
// characters of spaCy's QUOTES alternation, which that pattern puts inside a character class
// (so ( ? : | count as well).
bool AllowsPeriodSuffix(char32_t cp) {
  return IsAsciiDigit(cp) || unicode::IsLower(cp) || unicode::IsUncasedLetter(cp) ||
         Among(cp, U"%\u00b2-)]+(?:|\u2019") || IsQuote(cp);
}

bool IsAlphaLower(char32_t cp) { return unicode::IsLower(cp) || unicode::IsUncasedLetter(cp); }
bool IsAlphaUpper(char32_t cp) { return unicode::IsUpper(cp) || unicode::IsUncasedLetter(cp); }

constexpr std::u32string_view kUnits[] = {
    U"km", U"km\u00b2", U"km\u00b3", U"m", U"m\u00b2", U"m\u00b3", U"dm", U"dm\u00b2",
    U"dm\u00b3", U"cm", U"cm\u00b2", U"cm\u00b3", U"mm", U"mm\u00b2", U"mm\u00b3", U"ha",
    U"\u00b5m", U"nm", U"yd", U"in", U"ft", U"kg", U"g", U"mg", U"\u00b5g", U"t", U"lb", U"oz",
    U"m/s", U"km/h", U"kmh", U"mph", U"hPa", U"Pa", U"mbar", U"mb", U"MB", U"kb", U"KB", U"gb",
    U"GB", U"tb", U"TB", U"T", U"G", U"M", U"K", U"%"};
constexpr std::u32string_view kMultiCharCurrencies[] = {U"US$", U"C$", U"A$"};
constexpr std::u32string_view kHyphens[] = {U"-", U"\u2013", U"\u2014", U"--", U"---",
                                            U"\u2014\u2014", U"~"};

// ---------------------------------------------------------------------------------------------
// One chunk (no whitespace), as code points cps[b, e).

class ChunkSplitter {
 public:
  ChunkSplitter(std::u32string_view cps, const std::vector<size_t>& offsets,
                std::string_view bytes)
      : cps_(cps), offsets_(offsets), bytes_(bytes) {}

  void Split(std::vector<std::string>* tokens) const;

 private:
  std::string_view Bytes(size_t b, size_t e) const {
    return bytes_.substr(offsets_[b], offsets_[e] - offsets_[b]);
  }
  bool Is(size_t b, size_t e, std::u32string_view text) const {
    return e - b >= text.size() && cps_.substr(b, text.size()) == text;
  }
  const std::vector<std::string>* Special(size_t b, size_t e) const {
    return Specials().Find(Bytes(b, e));
  }
  size_t PrefixLength(size_t b, size_t e) const;
  size_t SuffixLength(size_t b, size_t e) const;
  bool SuffixAt(size_t b, size_t p, size_t e) const;
  size_t InfixLength(size_t b, size_t pos, size_t e) const;
  bool LooksLikeUrl(size_t b, size_t e) const;
  bool IsHost(size_t b, size_t e) const;
  void EmitMiddle(size_t b, size_t e, std::vector<std::string>* tokens) const;

  std::u32string_view cps_;
  const std::vector<size_t>& offsets_;
  std::string_view bytes_;
};

// spacy/lang/punctuation.py _prefixes: the first alternative that matches at the start wins.
size_t ChunkSplitter::PrefixLength(size_t b, size_t e) const {
  const char32_t c = cps_[b];
  if (Among(c, U"\u00a7%=+") || IsPunct(c)) return 1;
  if (c == '.' && b + 1 < e && cps_[b + 1] == '.') {  // an ellipsis, all of its dots
    size_t end = b + 1;
    while (end < e && cps_[end] == '.') ++end;
    return end - b;
  }
  if (Is(b, e, U"``") || Is(b, e, U"\u2019\u2019")) return 2;
  if (IsQuote(c) || IsCurrencySymbol(c)) return 1;
  for (std::u32string_view currency : kMultiCharCurrencies) {
    if (Is(b, e, currency)) return currency.size();
  }
  return 0;
}

// Whether one of the _suffixes alternatives matches cps[p, e), looking behind no further than b.
bool ChunkSplitter::SuffixAt(size_t b, size_t p, size_t e) const {
  const size_t length = e - p;
  const char32_t c = cps_[p];
  if (length == 2 && (c == '\'' || c == U'\u2019') && (cps_[p + 1] == 's' || cps_[p + 1] == 'S')) {
    return true;
  }
  if (length == 1 && (IsPunct(c) || IsQuote(c))) return true;
  if (length == 2 && (Is(p, e, U"\u2026\u2026") || Is(p, e, U"''") || Is(p, e, U"``") ||
                      Is(p, e, U"\u2018\u2018") || Is(p, e, U"\u2019\u2019"))) {
    return true;
  }
  if (p > b && IsAsciiDigit(cps_[p - 1])) {
    if (length == 1 && (c == '+' || IsCurrencySymbol(c))) return true;
    const std::u32string_view rest = cps_.substr(p, length);
    for (std::u32string_view currency : kMultiCharCurrencies) {
      if (rest == currency) return true;
    }
    for (std::u32string_view unit : kUnits) {
      if (rest == unit) return true;
    }
  }
  if (length == 1 && c == '.') {
    if (p >= b + 2 && cps_[p - 2] == U'\u00b0' && Among(cps_[p - 1], U"FfCcKk")) return true;
    if (p > b && AllowsPeriodSuffix(cps_[p - 1])) return true;
    if (p >= b + 2 && IsAlphaUpper(cps_[p - 2]) && IsAlphaUpper(cps_[p - 1])) return true;
  }
  return false;
}

// Python's regex search for the suffix pattern finds the match that starts earliest.
size_t ChunkSplitter::SuffixLength(size_t b, size_t e) const {
  if (e - b >= 2 && cps_[e - 1] == '.' && cps_[e - 2] == '.') {
    size_t start = e - 2;
    while (start > b && cps_[start - 1] == '.') --start;
    return e - start;
  }
  constexpr size_t kLongestSuffix = 4;  // "km/h", "mbar"
  for (size_t p = e - std::min(e - b, kLongestSuffix); p < e; ++p) {
    if (SuffixAt(b, p, e)) return e - p;
  }
  return 0;
}

// spacy/lang/punctuation.py _infixes (2.0), tried in order at `pos`; 0 when none matches.
size_t ChunkSplitter::InfixLength(size_t b, size_t pos, size_t e) const {
  const char32_t c = cps_[pos];
  const bool has_prev = pos > b, has_next = pos + 1 < e;
  const char32_t prev = has_prev ? cps_[pos - 1] : 0, next = has_next ? cps_[pos + 1] : 0;
  if (c == '.' && next == '.') {
    size_t end = pos + 1;
    while (end < e && cps_[end] == '.') ++end;
    return end - pos;
  }
  if (c == U'\u2026') return 1;
  if (Among(c, U"+-*^") && IsAsciiDigit(prev) && (IsAsciiDigit(next) || next == '-')) return 1;
  if (c == '.' && IsAlphaLower(prev) && IsAlphaUpper(next)) return 1;
  if (c == ',' && IsAlpha(prev) && IsAlpha(next)) return 1;
  if (has_prev && IsAlpha(prev)) {
    size_t hyphen = pos;  // [?";:=,.]* then a hyphen, then a letter
    while (hyphen < e && Among(cps_[hyphen], U"?\";:=,.")) ++hyphen;
    for (std::u32string_view h : kHyphens) {
      const size_t end = hyphen + h.size();
      if (Is(hyphen, e, h) && end < e && IsAlpha(cps_[end])) return end - pos;
    }
  }
  if (Among(c, U":<>=/") && (IsAlpha(prev) || prev == '"') && IsAlpha(next)) return 1;
  return 0;
}

// One dot-separated host name of spaCy 2.0's URL pattern: labels of [a-z0-9-] ending in
// [a-z0-9], at least two, the last two or more letters a-z.
bool ChunkSplitter::IsHost(size_t b, size_t e) const {
  size_t labels = 0, label_start = b;
  for (size_t i = b; i <= e; ++i) {
    if (i < e && cps_[i] != '.') {
      const char32_t c = cps_[i];
      if (!(IsAsciiDigit(c) || (c >= 'a' && c <= 'z') || c == '-')) return false;
      continue;
    }
    if (i == label_start || cps_[i - 1] == '-') return false;
    ++labels;
    if (i == e) {
      if (labels < 2 || i - label_start < 2) return false;
      for (size_t k = label_start; k < i; ++k) {
        if (cps_[k] < 'a' || cps_[k] > 'z') return false;
      }
    }
    label_start = i + 1;
  }
  return true;
}

// spaCy 2.0's TOKEN_MATCH (URL_PATTERN): [scheme://][user[:pass]@]host[:port][/path], starting
// with a word character. IP addresses are left out: they stay whole without it.
bool ChunkSplitter::LooksLikeUrl(size_t b, size_t e) const {
  if (!unicode::IsWordChar(cps_[b])) return false;
  if (std::find(cps_.begin() + b, cps_.begin() + e, U'.') == cps_.begin() + e) return false;
  auto host_and_rest = [&](size_t start) {
    size_t end = start;
    while (end < e && cps_[end] != ':' && cps_[end] != '/') ++end;
    if (!IsHost(start, end)) return false;
    if (end < e && cps_[end] == ':') {
      size_t digits = end + 1;
      while (digits < e && IsAsciiDigit(cps_[digits])) ++digits;
      if (digits - end - 1 < 2 || digits - end - 1 > 5) return false;
      end = digits;
    }
    return end == e || cps_[end] == '/';
  };
  auto after_scheme = [&](size_t start) {
    for (size_t at = e; at-- > start + 1;) {  // user info: the last '@' that works first
      if (cps_[at] == '@' && host_and_rest(at + 1)) return true;
    }
    return host_and_rest(start);
  };
  for (std::u32string_view scheme : {U"https://", U"http://", U"ftp://", U"mailto://"}) {
    if (Is(b, e, scheme) && after_scheme(b + scheme.size())) return true;
  }
  return after_scheme(b);
}

// spacy/tokenizer.pyx _attach_tokens for the part left after the affixes.
void ChunkSplitter::EmitMiddle(size_t b, size_t e, std::vector<std::string>* tokens) const {
  if (b >= e) return;
  if (const auto* pieces = Special(b, e)) {
    tokens->insert(tokens->end(), pieces->begin(), pieces->end());
    return;
  }
  if (LooksLikeUrl(b, e)) {
    tokens->emplace_back(Bytes(b, e));
    return;
  }
  size_t start = b;
  for (size_t pos = b; pos < e;) {
    const size_t length = InfixLength(b, pos, e);
    if (length == 0) {
      ++pos;
      continue;
    }
    // As in spaCy, an infix right at the start of what is left is not split off.
    if (pos != start) {
      tokens->emplace_back(Bytes(start, pos));
      tokens->emplace_back(Bytes(pos, pos + length));
      start = pos + length;
    }
    pos += length;
  }
  if (start < e) tokens->emplace_back(Bytes(start, e));
}

// spacy/tokenizer.pyx _split_affixes, then _attach_tokens.
void ChunkSplitter::Split(std::vector<std::string>* tokens) const {
  size_t b = 0, e = cps_.size();
  if (const auto* pieces = Special(b, e)) {
    tokens->insert(tokens->end(), pieces->begin(), pieces->end());
    return;
  }
  std::vector<std::pair<size_t, size_t>> prefixes, suffixes;
  size_t last_size = 0;
  while (b < e && e - b != last_size) {
    if (LooksLikeUrl(b, e)) break;
    last_size = e - b;
    const size_t prefix = PrefixLength(b, e);
    if (prefix > 0 && b + prefix < e && Special(b + prefix, e) != nullptr) {
      prefixes.emplace_back(b, b + prefix);
      b += prefix;
      break;
    }
    const size_t suffix = SuffixLength(b, e);
    if (suffix > 0 && e - suffix > b && Special(b, e - suffix) != nullptr) {
      suffixes.emplace_back(e - suffix, e);
      e -= suffix;
      break;
    }
    if (prefix > 0 && suffix > 0 && prefix + suffix <= e - b) {
      prefixes.emplace_back(b, b + prefix);
      suffixes.emplace_back(e - suffix, e);
      b += prefix;
      e -= suffix;
    } else if (prefix > 0) {
      prefixes.emplace_back(b, b + prefix);
      b += prefix;
    } else if (suffix > 0) {
      suffixes.emplace_back(e - suffix, e);
      e -= suffix;
    }
    if (b < e && Special(b, e) != nullptr) break;
  }
  for (const auto& [pb, pe] : prefixes) tokens->emplace_back(Bytes(pb, pe));
  EmitMiddle(b, e, tokens);
  for (auto it = suffixes.rbegin(); it != suffixes.rend(); ++it) {
    tokens->emplace_back(Bytes(it->first, it->second));
  }
}

bool IsAsciiLetters(std::string_view chunk) {
  for (char c : chunk) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  }
  return true;
}

// Tokenizes one maximal run of non-whitespace or of whitespace.
void TokenizeSpan(std::string_view span, bool whitespace, std::u32string* cps,
                  std::vector<size_t>* offsets, std::vector<std::string>* tokens) {
  // Whitespace matches no affix, and plain words match nothing at all unless they are special.
  if (whitespace || (IsAsciiLetters(span) && Specials().Find(span) == nullptr)) {
    tokens->emplace_back(span);
    return;
  }
  cps->clear();
  offsets->clear();
  for (size_t i = 0; i < span.size();) {
    offsets->push_back(i);
    cps->push_back(unicode::DecodeAt(span, &i));
  }
  offsets->push_back(span.size());
  ChunkSplitter(*cps, *offsets, span).Split(tokens);
}

}  // namespace

// spacy/tokenizer.pyx Tokenizer.__call__: spans of whitespace and non-whitespace, where one
// space after a token is swallowed.
void SpacyEnglishTokens(std::string_view text, std::vector<std::string>* tokens) {
  if (text.empty()) return;
  std::u32string cps;
  std::vector<size_t> offsets;
  size_t first = 0;
  bool in_space = unicode::IsSpace(unicode::DecodeAt(text, &first));
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t here = i;
    const char32_t cp = unicode::DecodeAt(text, &i);
    if (unicode::IsSpace(cp) == in_space) continue;
    if (start < here) {
      TokenizeSpan(text.substr(start, here - start), in_space, &cps, &offsets, tokens);
    }
    start = cp == ' ' ? i : here;
    in_space = !in_space;
  }
  if (start < text.size()) {
    TokenizeSpan(text.substr(start), in_space, &cps, &offsets, tokens);
  }
}

}  // namespace ulmfit

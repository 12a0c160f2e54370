// fastai's text pre-rules (fastai v2 fastai/text/core.py, defaults.text_proc_rules) and the special
// tokens that every ulmfit tokenizer reserves.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace ulmfit {

// Special tokens in fastai v2 order; ids 0..8 in every SentencePiece tokenizer ulmfit trains. A
// word vocabulary (fastai's itos) only keeps xxunk and xxpad at 0 and 1: ask
// Tokenizer::SpecialTokenId for the others.
inline constexpr std::array<std::string_view, 9> kSpecialTokens = {
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"};
constexpr int kUnkId = 0, kPadId = 1, kBosId = 2, kEosId = 3, kFldId = 4;
constexpr int kRepId = 5, kWrepId = 6, kUpId = 7, kMajId = 8;
constexpr int kNumSpecialTokens = 9;

struct RuleOptions {
  bool rules = true;      // fix_html, replace_rep, replace_wrep, spec_add_spaces, caps markers
  bool lowercase = true;  // lowercase everything after marking case
};

// Turns one raw document into the space-separated text SentencePiece sees, applying in order:
//   fix_html           "#39;"->"'", "<br />"->newline, "<unk>"->"xxunk", " @-@ "->"-", ... then
//                      a minimal HTML unescape (&lt; &gt; &amp; &quot; &apos; &#N; &#xN;)
//   replace_rep        a character repeated >= 3 times: "cccc" -> " xxrep 4 c "
//   replace_wrep       a word repeated >= 3 times: "a a a" -> " xxwrep 3 a "
//   spec_add_spaces    spaces around / # and backslash
//   rm_useless_spaces  (all whitespace, newlines included, becomes single spaces)
//   replace_all_caps   "HELLO" -> "xxup hello" (a one-letter "I" is only lowercased)
//   replace_maj        "Hello" -> "xxmaj hello"
//   lowercase          then "xxbos " is prepended
// With options.rules == false only whitespace is collapsed, the text lowercased (if set) and
// "xxbos " prepended.
//
// Text is UTF-8 and multi-byte sequences are never split. As in fastai (whose regexes use
// [A-Z] / [a-z]), upper/lower case detection is ASCII-only: a non-ASCII letter counts as "not
// an ASCII capital, not an ASCII lowercase letter", so "CAFÉ" is all caps but "École" is not
// capitalised. Lowercasing maps ASCII, Latin-1, Latin Extended-A, Greek and basic Cyrillic
// capitals; other scripts are left as they are. Repetition and word rules work on code points;
// bytes >= 0x80 count as word characters for replace_wrep.
std::string ApplyRules(std::string_view text, const RuleOptions& options);

// fix_html alone (sequential replacements exactly as fastai's, then HTML unescaping).
std::string FixHtml(std::string_view text);

// Appends the lowercase form of `text` to `out` (mapping described above; byte length is kept).
void AppendLowercase(std::string_view text, std::string* out);

}  // namespace ulmfit

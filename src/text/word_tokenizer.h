// fastai v1's word-level text processing (fastai/text/transform.py), the one that fastai's
// pretrained WikiText-103 AWD-LSTM and its 60,000-word vocabulary (itos_wt103.pkl) assume:
// pre-rules on the raw string, spaCy's English tokenizer (text/spacy_english.h), post-rules on
// the tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "text/rules.h"

namespace ulmfit {

// fastai v1's defaults.text_spec_tok, in v1 order (v2 and ulmfit's kSpecialTokens put xxrep and
// xxwrep before xxup and xxmaj). A fastai v1 vocabulary starts with these.
inline constexpr std::array<std::string_view, 9> kFastaiV1SpecialTokens = {
    "xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxmaj", "xxup", "xxrep", "xxwrep"};

// Turns one raw document into fastai v1's tokens, "xxbos" first.
//
// With options.rules, as fastai v1 does (the WT103 vocabulary needs rules and lowercase on):
//   - "xxbos " is put in front of the text, then the pre-rules run on the string:
//     fix_html           as ApplyRules' (the same replacement list, then HTML unescaping), then
//                        runs of 2+ spaces become one;
//     replace_rep        a character repeated 4+ times: "!!!!" -> " xxrep 4 ! " (v2: 3+ times);
//     replace_wrep       a word plus its separator repeated 4+ times: "no, no, no, no, " ->
//                        " xxwrep 4 no, " (v2: 3+ times); as in v1, N counts the whitespace-
//                        separated pieces, and a last copy without a separator is not counted;
//     spec_add_spaces    spaces around / # and newline (v2 adds backslash and keeps no newline);
//     rm_useless_spaces  runs of spaces become one; newlines stay, so spaCy makes tokens such as
//                        "\n " of them (v2 turns all whitespace into single spaces);
//   - SpacyEnglishTokens splits the string;
//   - post-rules on the tokens (v2 does these on the string, before tokenizing):
//     replace_all_caps   a token with cased letters all upper case and 2+ characters is
//                        preceded by "xxup" ("DON'T" -> "xxup" "don't"; "I" gets no marker);
//     deal_caps          a token of 2+ characters whose first letter is upper case and the rest
//                        lower case is preceded by "xxmaj"; then every token is lowercased.
//   Case follows Python's isupper()/islower() over the scripts unicode::ToLower covers (v1 is
//   Unicode-aware: "École" gets xxmaj, where v2's regexes see ASCII only).
// options.lowercase == false keeps the markers and lowercases only the tokens they mark, as
// ApplyRules does. Without options.rules: "xxbos" and the text split at whitespace, lowercased
// if options.lowercase.
//
// Any bytes that are not valid UTF-8 become U+FFFD first (see unicode::ToValidUtf8), so broken
// input yields tokens containing "\xEF\xBF\xBD" rather than split or invalid characters.
std::vector<std::string> FastaiWordTokens(std::string_view text, const RuleOptions& options);

// The pieces, for tools that need them separately (bench/bench_word_tokenizer.cc):
// the pre-rules on an already "xxbos "-prefixed, valid UTF-8 string ...
std::string FastaiV1PreRules(std::string_view text);
// ... and the post-rules on a token list, in place.
void FastaiV1PostRules(bool lowercase, std::vector<std::string>* tokens);

// Counts tokens over many documents, remembering the order in which each was first seen (as
// Python's Counter does, which breaks ties in most_common).
class TokenCounter {
 public:
  void Add(const std::vector<std::string>& tokens);
  // Adds another counter's counts as if its documents came after this one's.
  void Merge(const TokenCounter& later);
  int64_t total() const { return total_; }
  // fastai v1's Vocab.create(tokens, max_vocab, min_freq): the max_vocab most frequent tokens
  // seen at least min_freq times, the nine kFastaiV1SpecialTokens moved to the front, cut to
  // max_vocab, then padded with "xxfake" to a multiple of 8 if shorter than max_vocab.
  std::vector<std::string> FastaiVocabulary(int max_vocab, int min_freq) const;

 private:
  absl::flat_hash_map<std::string, size_t> index_;
  std::vector<std::pair<std::string, int64_t>> counts_;  // first-seen order
  int64_t total_ = 0;
};

}  // namespace ulmfit

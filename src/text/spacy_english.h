// An English word tokenizer that follows spaCy 2.0's rules (spacy/tokenizer.pyx,
// spacy/lang/punctuation.py, spacy/lang/char_classes.py, spacy/lang/tokenizer_exceptions.py,
// spacy/lang/en/tokenizer_exceptions.py): the tokenizer of spacy.blank("en") that fastai v1's
// SpacyTokenizer used, with fastai's special tokens added as special cases.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ulmfit {

// Appends the tokens of `text` (valid UTF-8; see unicode::ToValidUtf8) to `tokens`:
//  - Text is cut at whitespace (Python's str.isspace). A single space after a word only
//    separates; every other run of whitespace is a token of its own ("a  b" -> "a", " ", "b";
//    "a \n b" -> "a", "\n ", "b"), as spaCy does.
//  - Each chunk is looked up in the special-case table (contractions such as "don't" ->
//    "do" "n't" in lower and Title case only, "cannot" -> "can" "not", "gonna", "let's",
//    abbreviations such as "Mr." "e.g." "Jan." "N.Y.", "3pm" -> "3" "pm", emoticons); if it is
//    not there, prefixes (punctuation, quotes, brackets, currency, "...") and suffixes
//    (punctuation, quotes, "'s", units and currency after a digit, "." after a digit, a lower-case
//    letter or two capitals) are stripped repeatedly, re-checking the table each time, and what
//    is left is split at infixes ("..." anywhere, a hyphen or ',' between letters, '.' between
//    a lower- and an upper-case letter, + - * ^ between digits, : < > = / after a letter).
//  - Strings that look like URLs or e-mail addresses ("www.example.com", "me@example.com") are
//    not split further.
// Where spaCy 2.0 and later 2.x releases differ (icons and "—" as affixes, "+" before digits,
// letters of all scripts in ALPHA), this follows 2.0, which fastai v1 required; letters of every
// script that unicode::IsAlpha knows count as letters.
void SpacyEnglishTokens(std::string_view text, std::vector<std::string>* tokens);

}  // namespace ulmfit

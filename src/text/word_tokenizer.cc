#include "text/word_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "text/spacy_english.h"
#include "text/unicode.h"

namespace ulmfit {
namespace {

constexpr std::string_view kBos = "xxbos";

// fastai v1 fix_html: ApplyRules' FixHtml (same replacements, same order) plus v1's final
// re.sub(r'  +', ' ', ...).
std::string FixHtmlV1(std::string_view text) {
  const std::string fixed = FixHtml(text);
  std::string out;
  out.reserve(fixed.size());
  for (size_t i = 0; i < fixed.size(); ++i) {
    if (fixed[i] == ' ' && i > 0 && fixed[i - 1] == ' ') continue;
    out.push_back(fixed[i]);
  }
  return out;
}

// fastai v1 replace_rep: re.sub(r'(\S)(\1{3,})', ' xxrep N c ', t).
std::string ReplaceRepV1(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    size_t next = i;
    const char32_t cp = unicode::DecodeAt(text, &next);
    const size_t length = next - i;
    size_t count = 1;
    if (!unicode::IsSpace(cp)) {
      while (i + (count + 1) * length <= text.size() &&
             std::memcmp(text.data() + i, text.data() + i + count * length, length) == 0) {
        ++count;
      }
    }
    if (count >= 4) {
      out.append(" xxrep ").append(std::to_string(count)).append(" ");
      out.append(text.substr(i, length)).append(" ");
    } else {
      out.append(text.substr(i, count * length));
    }
    i += count * length;
  }
  return out;
}

// len(s.split()) in Python: the number of whitespace-separated pieces.
int64_t CountPieces(std::string_view text) {
  int64_t pieces = 0;
  bool in_piece = false;
  for (size_t i = 0; i < text.size();) {
    const bool space = unicode::IsSpace(unicode::DecodeAt(text, &i));
    if (!space && !in_piece) ++pieces;
    in_piece = !space;
  }
  return pieces;
}

// fastai v1 replace_wrep: re.sub(r'(\b\w+\W+)(\1{3,})', ' xxwrep N c ', t) with N =
// len(cc.split()) + 1. A unit is a whole word plus the non-word characters after it; like the
// regex, the longest separator that repeats wins.
std::string ReplaceWrepV1(std::string_view text) {
  std::vector<char32_t> cps;
  std::vector<size_t> offsets;
  unicode::Decode(text, &cps, &offsets);
  const size_t n = cps.size();
  std::string out;
  size_t copied = 0;  // bytes of `text` already in `out`
  size_t i = 0;
  while (i < n) {
    if (!unicode::IsWordChar(cps[i]) || (i > 0 && unicode::IsWordChar(cps[i - 1]))) {
      ++i;
      continue;
    }
    size_t word_end = i;
    while (word_end < n && unicode::IsWordChar(cps[word_end])) ++word_end;
    size_t separator_end = word_end;
    while (separator_end < n && !unicode::IsWordChar(cps[separator_end])) ++separator_end;
    bool replaced = false;
    for (size_t unit_end = separator_end; unit_end > word_end && !replaced; --unit_end) {
      const std::string_view unit = text.substr(offsets[i], offsets[unit_end] - offsets[i]);
      size_t pos = offsets[unit_end];
      size_t repeats = 0;
      while (text.compare(pos, unit.size(), unit) == 0) {
        ++repeats;
        pos += unit.size();
      }
      if (repeats < 3) continue;
      out.append(text.substr(copied, offsets[i] - copied));
      const int64_t count = CountPieces(text.substr(offsets[unit_end], pos - offsets[unit_end])) + 1;
      out.append(" xxwrep ").append(std::to_string(count)).append(" ");
      out.append(unit).append(" ");
      copied = pos;
      i += (repeats + 1) * (unit_end - i);
      replaced = true;
    }
    if (!replaced) i = word_end;
  }
  out.append(text.substr(copied));
  return out;
}

// fastai v1 spec_add_spaces then rm_useless_spaces: ' c ' around / # and newline, then runs of
// spaces (only ' ') become one.
std::string SpecAddSpacesAndTrim(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 16 + 4);
  auto add_space = [&out] {
    if (out.empty() || out.back() != ' ') out.push_back(' ');
  };
  for (char c : text) {
    if (c == '/' || c == '#' || c == '\n') {
      add_space();
      out.push_back(c);
      add_space();
    } else if (c == ' ') {
      add_space();
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// Python's isupper()/islower() facts about one token.
struct TokenCase {
  size_t length = 0;  // code points
  bool first_upper = false;
  bool rest_upper = false, rest_lower = false;
  bool any_upper() const { return first_upper || rest_upper; }
};

TokenCase CaseOf(std::string_view token, bool* first_lower) {
  TokenCase info;
  *first_lower = false;
  for (size_t i = 0; i < token.size();) {
    const char32_t cp = unicode::DecodeAt(token, &i);
    const bool upper = unicode::IsUpper(cp), lower = !upper && unicode::IsLower(cp);
    if (info.length == 0) {
      info.first_upper = upper;
      *first_lower = lower;
    } else {
      info.rest_upper |= upper;
      info.rest_lower |= lower;
    }
    ++info.length;
  }
  return info;
}

void SplitAtWhitespace(std::string_view text, bool lowercase, std::vector<std::string>* tokens) {
  size_t start = 0;
  bool in_token = false;
  auto flush = [&](size_t end) {
    std::string_view token = text.substr(start, end - start);
    if (lowercase) {
      std::string lower;
      unicode::AppendLower(token, &lower);
      tokens->push_back(std::move(lower));
    } else {
      tokens->emplace_back(token);
    }
  };
  for (size_t i = 0; i < text.size();) {
    const size_t here = i;
    const bool space = unicode::IsSpace(unicode::DecodeAt(text, &i));
    if (space && in_token) flush(here);
    if (!space && !in_token) start = here;
    in_token = !space;
  }
  if (in_token) flush(text.size());
}

}  // namespace

std::string FastaiV1PreRules(std::string_view text) {
  return SpecAddSpacesAndTrim(ReplaceWrepV1(ReplaceRepV1(FixHtmlV1(text))));
}

void FastaiV1PostRules(bool lowercase, std::vector<std::string>* tokens) {
  std::vector<std::string> out;
  out.reserve(tokens->size() + tokens->size() / 4);
  for (std::string& token : *tokens) {
    if (token.empty()) continue;  // deal_caps drops empty tokens
    bool first_lower = false;
    const TokenCase info = CaseOf(token, &first_lower);
    // isupper(): some cased character and none lower case.
    const bool all_caps = info.any_upper() && !first_lower && !info.rest_lower && info.length > 1;
    const bool title = info.first_upper && info.length > 1 && info.rest_lower && !info.rest_upper;
    if (all_caps) out.emplace_back("xxup");
    if (title) out.emplace_back("xxmaj");
    if (info.any_upper() && (lowercase || all_caps || title)) {
      std::string lower;
      lower.reserve(token.size() + 2);
      unicode::AppendLower(token, &lower);
      out.push_back(std::move(lower));
    } else {
      out.push_back(std::move(token));
    }
  }
  tokens->swap(out);
}

std::vector<std::string> FastaiWordTokens(std::string_view text, const RuleOptions& options) {
  const std::string valid = unicode::ToValidUtf8(text);
  std::vector<std::string> tokens;
  tokens.reserve(valid.size() / 4 + 4);
  if (!options.rules) {
    tokens.emplace_back(kBos);
    SplitAtWhitespace(valid, options.lowercase, &tokens);
    return tokens;
  }
  // fastai v1 _join_texts puts "xxbos " in front before the rules run.
  std::string with_bos;
  with_bos.reserve(valid.size() + kBos.size() + 1);
  with_bos.append(kBos).append(" ").append(valid);
  SpacyEnglishTokens(FastaiV1PreRules(with_bos), &tokens);
  FastaiV1PostRules(options.lowercase, &tokens);
  return tokens;
}

void TokenCounter::Add(const std::vector<std::string>& tokens) {
  for (const std::string& token : tokens) {
    auto [it, inserted] = index_.try_emplace(token, counts_.size());
    if (inserted) counts_.emplace_back(token, 0);
    ++counts_[it->second].second;
  }
  total_ += static_cast<int64_t>(tokens.size());
}

void TokenCounter::Merge(const TokenCounter& later) {
  for (const auto& [token, count] : later.counts_) {
    auto [it, inserted] = index_.try_emplace(token, counts_.size());
    if (inserted) counts_.emplace_back(token, 0);
    counts_[it->second].second += count;
  }
  total_ += later.total_;
}

std::vector<std::string> TokenCounter::FastaiVocabulary(int max_vocab, int min_freq) const {
  std::vector<size_t> order(counts_.size());
  std::iota(order.begin(), order.end(), 0);
  // Counter.most_common: by count, ties in first-seen order.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return counts_[a].second > counts_[b].second; });
  const size_t limit = std::max(0, max_vocab);
  std::vector<std::string> itos(kFastaiV1SpecialTokens.begin(), kFastaiV1SpecialTokens.end());
  for (size_t k = 0; k < order.size() && k < limit; ++k) {
    const auto& [token, count] = counts_[order[k]];
    if (count < min_freq) continue;
    if (std::find(kFastaiV1SpecialTokens.begin(), kFastaiV1SpecialTokens.end(), token) !=
        kFastaiV1SpecialTokens.end()) {
      continue;  // already in front
    }
    itos.push_back(token);
  }
  if (itos.size() > limit) itos.resize(limit);
  if (itos.size() < limit) {
    while (itos.size() % 8 != 0) itos.emplace_back("xxfake");
  }
  return itos;
}

}  // namespace ulmfit

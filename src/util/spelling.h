// "Did you mean ...?" for names a user mistyped: config keys, enum values, flags, commands.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ulmfit {

// Levenshtein distance (insertions, deletions and substitutions of bytes).
int EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word`: a case-insensitive match, a prefix either way (when `word`
// has at least `min_prefix` characters), or within edit distance 3 and shorter than the word
// itself (so "foo" does not suggest "run"). Candidates are lower case. "" if none is close.
std::string ClosestWord(const std::string& word, const std::vector<std::string>& candidates,
                        size_t min_prefix = 2);

}  // namespace ulmfit

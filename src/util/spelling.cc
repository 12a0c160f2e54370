#include "util/spelling.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ulmfit {

int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string ClosestWord(const std::string& word, const std::vector<std::string>& candidates,
                        size_t min_prefix) {
  const std::string lower = absl::AsciiStrToLower(word);
  constexpr int kNoMatch = 4;
  int best_score = kNoMatch;
  std::string best;
  for (const std::string& candidate : candidates) {
    int score = kNoMatch;
    if (lower == candidate) {
      score = 0;
    } else if (lower.size() >= min_prefix &&
               (absl::StartsWith(candidate, lower) || absl::StartsWith(lower, candidate))) {
      score = 1;
    } else {
      const int distance = EditDistance(lower, candidate);
      if (distance <= 3 && distance < static_cast<int>(lower.size())) score = distance;
    }
    if (score < best_score) {
      best_score = score;
      best = candidate;
    }
  }
  return best;
}

}  // namespace ulmfit

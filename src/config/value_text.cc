#include "config/value_text.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace ulmfit {
namespace {

// *out is left alone on failure (absl::SimpleAtoi zeroes its output), so a key of the wrong
// type keeps its default.
template <typename Int>
bool ParseInteger(const std::string& text, Int* out) {
  Int exact;
  if (absl::SimpleAtoi(text, &exact)) {
    *out = exact;
    return true;
  }
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value != std::floor(value)) {
    return false;
  }
  const double lo = static_cast<double>(std::numeric_limits<Int>::min());
  const double hi = static_cast<double>(std::numeric_limits<Int>::max()) + 1.0;
  if (value < lo || value >= hi) return false;
  *out = static_cast<Int>(value);
  return true;
}

}  // namespace

bool ParseScalar(const std::string& text, std::string* out) {
  *out = text;
  return true;
}

bool ParseScalar(const std::string& text, bool* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "true" || lower == "yes") {
    *out = true;
  } else if (lower == "false" || lower == "no") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

bool ParseScalar(const std::string& text, double* out) {
  double value;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) return false;
  *out = value;
  return true;
}

bool ParseScalar(const std::string& text, int* out) { return ParseInteger(text, out); }
bool ParseScalar(const std::string& text, int64_t* out) { return ParseInteger(text, out); }
bool ParseScalar(const std::string& text, uint64_t* out) { return ParseInteger(text, out); }

bool ParseScalar(const std::string& text, GroupCount* out) {
  if (text == "all") {
    *out = GroupCount(GroupCount::kAll);
    return true;
  }
  // 0 would read as "all"; a phase must train at least one group.
  int count = 0;
  if (!ParseInteger(text, &count) || count < 1) return false;
  *out = GroupCount(count);
  return true;
}

std::string JoinErrors(const std::vector<std::string>& errors) {
  return absl::StrReplaceAll(absl::StrJoin(errors, "; "), {{"\n", " "}, {"\r", " "}});
}

std::string OneOfMessage(const std::string& key, const std::vector<std::string>& names,
                         const std::string& got, const std::string& text) {
  const std::string best = text.empty() ? "" : ClosestWord(text, names);
  return absl::StrCat(key, " must be one of ", absl::StrJoin(names, ", "), ", got ", got,
                      best.empty() ? "" : absl::StrCat(" (did you mean '", best, "'?)"));
}

std::vector<std::string> SplitListText(const std::string& text) {
  std::vector<std::string> items;
  if (absl::StripAsciiWhitespace(text).empty()) return items;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    items.emplace_back(absl::StripAsciiWhitespace(item));
  }
  return items;
}

}  // namespace ulmfit

// Config values as text: scalars, enums and lists parsed from and formatted to the text YAML
// holds, and the messages for text that is not a valid value. Messages carry no location; the
// loader prepends "FILE:LINE:COL: " or "--set KEY=VALUE: ".
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/config.h"
#include "config/schema.h"
#include "fmt/format.h"

namespace ulmfit {

// ---------------------------------------------------------------------------------------------
// One scalar (or list item). Each ParseScalar returns false, leaving *out alone, if `text` is not
// a valid T.

bool ParseScalar(const std::string& text, std::string* out);
bool ParseScalar(const std::string& text, bool* out);    // true/false, yes/no, any case
bool ParseScalar(const std::string& text, double* out);  // finite only
// Integers also accept an exact float such as 2e6, handy for sizes.
bool ParseScalar(const std::string& text, int* out);
bool ParseScalar(const std::string& text, int64_t* out);
bool ParseScalar(const std::string& text, uint64_t* out);
bool ParseScalar(const std::string& text, GroupCount* out);  // "all" or an integer >= 1

template <typename E, typename = std::enable_if_t<kIsConfigEnum<E>>>
bool ParseScalar(const std::string& text, E* out) {
  return ParseEnum(text, out);
}

// What a valid value is, for "expected ..." (one value) and "items must be ..." (list items).
inline const char* TypeName(const std::string*) { return "a string"; }
inline const char* TypeName(const bool*) { return "true or false (yes/no)"; }
inline const char* TypeName(const double*) { return "a number"; }
inline const char* TypeName(const int*) { return "an integer"; }
inline const char* TypeName(const int64_t*) { return "an integer"; }
inline const char* TypeName(const uint64_t*) { return "a non-negative integer"; }
inline const char* ItemsName(const std::string*) { return "strings"; }
inline const char* ItemsName(const double*) { return "numbers"; }
inline const char* ItemsName(const int*) { return "integers"; }
inline const char* ItemsName(const uint64_t*) { return "non-negative integers"; }
inline const char* ItemsName(const GroupCount*) { return "positive integers or 'all'"; }

// The text that parses back to `value`: doubles in the shortest form that reads back exactly,
// enums by name, a GroupCount of kAll as "all".
template <typename T>
std::string FormatScalar(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_same_v<T, GroupCount>) {
    return value.count == GroupCount::kAll ? "all" : fmt::format("{}", value.count);
  } else if constexpr (kIsConfigEnum<T>) {
    return EnumName(value);
  } else {
    return fmt::format("{}", value);
  }
}

// A list as a YAML flow sequence, "[1, 2, all]", the form ConfigToYaml writes (for messages).
template <typename T>
std::string FormatList(const std::vector<T>& items) {
  std::vector<std::string> texts;
  for (const T& item : items) texts.push_back(FormatScalar(item));
  return absl::StrCat("[", absl::StrJoin(texts, ", "), "]");
}

// ---------------------------------------------------------------------------------------------
// Messages.

// Several messages as one line, "; "-separated, whatever newlines yaml-cpp or a value put in.
std::string JoinErrors(const std::vector<std::string>& errors);

// "KEY must be one of a, b, c, got GOT (did you mean 'b'?)"; the suggestion is the name closest
// to `text` (if any). `got` is "'text'" for a scalar, or what else the YAML held ("a map").
std::string OneOfMessage(const std::string& key, const std::vector<std::string>& names,
                         const std::string& got, const std::string& text);

// For a value that is not a valid T: "KEY: expected an integer, got GOT" (enums: OneOfMessage).
template <typename T>
std::string ValueMessage(const std::string& key, const std::string& got, const std::string& text,
                         const T* type = nullptr) {
  if constexpr (kIsConfigEnum<T>) {
    return OneOfMessage(key, EnumNames<T>(), got, text);
  } else {
    return absl::StrCat(key, ": expected ", TypeName(type), ", got ", got);
  }
}

// For a list item that is not a valid T: "KEY items must be integers, got GOT (item 2 of
// WHOLE)"; enums list their names and add a suggestion. `whole` is the list as written.
template <typename T>
std::string ItemMessage(const std::string& key, const std::string& got, const std::string& text,
                        size_t index, const std::string& whole, const T* type = nullptr) {
  const std::string where = absl::StrCat("item ", index + 1, " of ", whole);
  if constexpr (kIsConfigEnum<T>) {
    // "KEY items must be one of a, b, got 'x' (item 2 of 'y,x'; did you mean 'b'?)"
    std::string message = OneOfMessage(absl::StrCat(key, " items"), EnumNames<T>(), got, text);
    const size_t suggestion = message.rfind(" (did you mean ");
    if (suggestion == std::string::npos) return absl::StrCat(message, " (", where, ")");
    return absl::StrCat(message.substr(0, suggestion), " (", where, "; ",
                        message.substr(suggestion + 2));
  } else {
    return absl::StrCat(key, " items must be ", ItemsName(type), ", got ", got, " (", where, ")");
  }
}

// ---------------------------------------------------------------------------------------------
// Whole values.

// The items of a comma-separated list ("1,2,all"), whitespace-trimmed; none for blank text.
std::vector<std::string> SplitListText(const std::string& text);

// Parses list items (already split); `whole` is the list as written, for messages. Appends one
// message per bad item to *errors; *out is set only when every item is valid.
template <typename T>
bool ParseListItems(const std::string& key, const std::vector<std::string>& items,
                    const std::string& whole, std::vector<T>* out,
                    std::vector<std::string>* errors) {
  std::vector<T> values(items.size());
  bool ok = true;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!ParseScalar(items[i], &values[i])) {
      errors->push_back(ItemMessage<T>(key, absl::StrCat("'", items[i], "'"), items[i], i, whole));
      ok = false;
    }
  }
  if (ok) *out = std::move(values);
  return ok;
}

// Parses `text` as the value of `key`: one scalar, or for a list the comma-separated items
// ("1,2,all", blank = no items). Appends messages to *errors; *out is set only on success.
template <typename T>
bool ParseValueText(const std::string& key, const std::string& text, T* out,
                    std::vector<std::string>* errors) {
  if constexpr (kIsList<T>) {
    return ParseListItems(key, SplitListText(text), absl::StrCat("'", text, "'"), out, errors);
  } else {
    if (ParseScalar(text, out)) return true;
    errors->push_back(ValueMessage<T>(key, absl::StrCat("'", text, "'"), text));
    return false;
  }
}

}  // namespace ulmfit

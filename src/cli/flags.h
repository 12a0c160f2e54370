// A small table-driven flag parser for the ulmfit subcommands.
//
// Each subcommand declares a FlagTable: one Flag per flag (name, value name, help text, kind,
// destination). ParseFlags fills the destinations and Usage writes the --help text from the same
// table, so the two cannot drift apart. Nothing here prints or exits: errors come back as
// absl::Status with a one-line message naming the flag, so the parser is unit-tested directly.
//
//   std::string input = "-";
//   int batch_size = 64;
//   const FlagTable table{"ulmfit predict", "Labels texts.",
//                         {StringFlag("--input", "FILE", "texts, one per line", &input),
//                          IntFlag("--batch-size", "N", "texts per batch", &batch_size, 1)}};
//   absl::StatusOr<bool> help = ParseFlags(table, args);  // true: -h/--help was given
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ulmfit::cli {

class Flag {
 public:
  enum class Kind { kString, kRepeated, kInt, kSwitch };

  // Use StringFlag, RepeatedFlag, IntFlag or SwitchFlag below.
  Flag(Kind kind, std::string name, std::string value_name, std::string help)
      : kind_(kind), name_(std::move(name)), value_name_(std::move(value_name)),
        help_(std::move(help)) {}

  // The flag must be given ("--model DIR is required").
  Flag& Required() {
    required_ = true;
    return *this;
  }
  // The only values a string flag takes; the value name defaults to "a|b|c".
  Flag& Choices(std::vector<std::string> choices);
  // What --help says when the flag is absent, instead of the destination's initial value;
  // "" says nothing (e.g. where absence means "the whole line").
  Flag& Default(std::string text) {
    default_text_ = std::move(text);
    return *this;
  }

  Kind kind() const { return kind_; }
  const std::string& name() const { return name_; }
  const std::string& value_name() const { return value_name_; }
  const std::string& help() const { return help_; }
  bool required() const { return required_; }
  const std::vector<std::string>& choices() const { return choices_; }
  const std::string& default_text() const { return default_text_; }
  int64_t min() const { return min_; }
  int64_t max() const { return max_; }

  // Stores one value of a flag that takes one; returns an error message naming the flag (without
  // the "ulmfit CMD: " prefix), or "" when stored.
  std::string Set(const std::string& value) const;
  // Sets a switch's destination to true.
  void SetSwitch() const { *set_switch_ = true; }

 private:
  friend Flag StringFlag(std::string, std::string, std::string, std::string*);
  friend Flag RepeatedFlag(std::string, std::string, std::string, std::vector<std::string>*);
  friend Flag SwitchFlag(std::string, std::string, bool*);
  template <typename T>
  friend Flag IntFlag(std::string, std::string, std::string, T*, int64_t);

  Kind kind_;
  std::string name_;        // "--model", with the dashes
  std::string value_name_;  // "DIR"; empty for a switch
  std::string help_;
  bool required_ = false;
  std::vector<std::string> choices_;  // empty: any value
  std::string default_text_;          // shown as "(default: ...)" when not empty
  int64_t min_ = std::numeric_limits<int64_t>::min();
  int64_t max_ = std::numeric_limits<int64_t>::max();
  std::function<void(const std::string&)> set_string_;  // kString, kRepeated
  std::function<void(int64_t)> set_int_;                // kInt, after the range check
  bool* set_switch_ = nullptr;                          // kSwitch
};

// `--name VALUE` or `--name=VALUE`; the last one given wins.
Flag StringFlag(std::string name, std::string value_name, std::string help, std::string* out);
// May be given more than once; each value is appended.
Flag RepeatedFlag(std::string name, std::string value_name, std::string help,
                  std::vector<std::string>* out);
// A switch: `--name` sets *out to true; it takes no value.
Flag SwitchFlag(std::string name, std::string help, bool* out);
// An integer >= `min` that fits in T (int, int64_t, uint64_t, ...).
template <typename T>
Flag IntFlag(std::string name, std::string value_name, std::string help, T* out, int64_t min) {
  Flag flag(Flag::Kind::kInt, std::move(name), std::move(value_name), std::move(help));
  flag.min_ = min;
  // A uint64_t takes values up to INT64_MAX: plenty for counts and seeds.
  constexpr uint64_t kTypeMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
  flag.max_ = static_cast<int64_t>(
      std::min<uint64_t>(kTypeMax, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
  flag.set_int_ = [out](int64_t value) { *out = static_cast<T>(value); };
  flag.default_text_ = std::to_string(*out);
  return flag;
}

// What one subcommand accepts, and the text around its flags in --help.
struct FlagTable {
  std::string command;  // as typed, e.g. "ulmfit predict"; error messages start with it
  std::string about;    // what the command does: a paragraph or two for --help
  std::vector<Flag> flags;
};

// Parses `args` (the words after the subcommand) into the table's destinations. Returns true
// when -h or --help was given (the caller prints Usage and stops; nothing is checked then),
// false when everything parsed and every required flag was given. A usage error (unknown flag,
// missing value, bad integer, value not among the choices, required flag absent, stray word)
// is an InvalidArgumentError whose message names the flag, e.g.
// "--batch-size needs an integer >= 1, got '-1'".
absl::StatusOr<bool> ParseFlags(const FlagTable& table, const std::vector<std::string>& args);

// The --help text: a usage line built from the table (required flags, then [options]), the
// `about` paragraphs, and one entry per flag with its value name, help, default and choices.
std::string Usage(const FlagTable& table);

// The candidate nearest to `word` (a prefix either way, or a small edit distance), or "" when
// none is near enough to be a plausible typo. For "did you mean" hints.
std::string ClosestName(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace ulmfit::cli

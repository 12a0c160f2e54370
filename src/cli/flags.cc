#include "cli/flags.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "util/spelling.h"

namespace ulmfit::cli {
namespace {

constexpr size_t kLineWidth = 100;
constexpr size_t kHelpColumn = 24;  // where a flag's help starts, unless its name is longer

// A word that is a flag rather than a flag's value: `--input --format csv` is a missing value,
// not a file named "--format". "-1" is a value (and then a bad one for a count).
bool LooksLikeFlag(const std::string& word) {
  return (word.size() > 2 && word.rfind("--", 0) == 0) || word == "-h";
}

std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string best = ClosestName(word, candidates);
  return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
}

std::string UnknownFlag(const FlagTable& table, const std::string& name) {
  std::vector<std::string> names{"--help"};
  for (const Flag& flag : table.flags) names.push_back(flag.name());
  return fmt::format("unknown flag '{}'{}", name, DidYouMean(name, names));
}

// `text` broken into lines of at most `width` characters at spaces, each after `indent`; the
// first line is not indented (it continues whatever came before it).
std::string Wrap(const std::string& text, size_t indent, size_t width) {
  std::string out, line;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

// "--model DIR" or "--resume": how a flag is written in the usage line and the flag list.
std::string Synopsis(const Flag& flag) {
  return flag.value_name().empty() ? flag.name() : flag.name() + " " + flag.value_name();
}

// One entry of the flag list: the synopsis, then the help with what the table knows appended.
std::string FlagEntry(const Flag& flag) {
  std::vector<std::string> notes;
  if (flag.required()) notes.push_back("required");
  if (flag.kind() == Flag::Kind::kRepeated) notes.push_back("repeatable");
  if (!flag.required() && !flag.default_text().empty()) {
    notes.push_back("default: " + flag.default_text());
  }
  std::string help = flag.help();
  if (!notes.empty()) help += " (" + absl::StrJoin(notes, "; ") + ")";
  std::string entry = "  " + Synopsis(flag);
  entry += entry.size() + 2 <= kHelpColumn ? std::string(kHelpColumn - entry.size(), ' ')
                                           : "\n" + std::string(kHelpColumn, ' ');
  return entry + Wrap(help, kHelpColumn, kLineWidth) + "\n";
}

}  // namespace

Flag& Flag::Choices(std::vector<std::string> choices) {
  choices_ = std::move(choices);
  if (value_name_.empty()) value_name_ = absl::StrJoin(choices_, "|");
  return *this;
}

std::string Flag::Set(const std::string& value) const {
  if (value.empty()) return fmt::format("{} needs a value {}, got ''", name_, value_name_);
  switch (kind_) {
    case Kind::kString:
    case Kind::kRepeated:
      if (!choices_.empty() &&
          std::find(choices_.begin(), choices_.end(), value) == choices_.end()) {
        return fmt::format("{} needs one of {}, got '{}'{}", name_, absl::StrJoin(choices_, ", "),
                           value, DidYouMean(value, choices_));
      }
      set_string_(value);
      return "";
    case Kind::kInt: {
      int64_t number = 0;
      if (!absl::SimpleAtoi(value, &number)) {
        return fmt::format("{} needs an integer, got '{}'", name_, value);
      }
      if (number > max_) {
        return fmt::format("{} needs an integer from {} to {}, got '{}'", name_, min_, max_,
                           value);
      }
      if (number < min_) {
        return fmt::format("{} needs an integer >= {}, got '{}'", name_, min_, value);
      }
      set_int_(number);
      return "";
    }
    case Kind::kSwitch:
      break;
  }
  return fmt::format("{} takes no value", name_);
}

Flag StringFlag(std::string name, std::string value_name, std::string help, std::string* out) {
  Flag flag(Flag::Kind::kString, std::move(name), std::move(value_name), std::move(help));
  flag.set_string_ = [out](const std::string& value) { *out = value; };
  flag.default_text_ = *out;
  return flag;
}

Flag RepeatedFlag(std::string name, std::string value_name, std::string help,
                  std::vector<std::string>* out) {
  Flag flag(Flag::Kind::kRepeated, std::move(name), std::move(value_name), std::move(help));
  flag.set_string_ = [out](const std::string& value) { out->push_back(value); };
  return flag;
}

Flag SwitchFlag(std::string name, std::string help, bool* out) {
  Flag flag(Flag::Kind::kSwitch, std::move(name), "", std::move(help));
  flag.set_switch_ = out;
  return flag;
}

absl::StatusOr<bool> ParseFlags(const FlagTable& table, const std::vector<std::string>& args) {
  std::vector<bool> given(table.flags.size(), false);
  // The first error is reported, but only after checking the rest for -h/--help: help wins.
  std::string error;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") return true;
    if (!error.empty()) continue;
    if (arg.size() < 2 || arg[0] != '-') {
      error = fmt::format("unexpected argument '{}' (flags start with --)", arg);
      continue;
    }
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const auto it = std::find_if(table.flags.begin(), table.flags.end(),
                                 [&](const Flag& flag) { return flag.name() == name; });
    if (it == table.flags.end()) {
      error = UnknownFlag(table, name);
      continue;
    }
    const Flag& flag = *it;
    given[it - table.flags.begin()] = true;
    if (flag.kind() == Flag::Kind::kSwitch) {
      if (equals != std::string::npos) {
        error = fmt::format("{} takes no value", name);
      } else {
        flag.SetSwitch();
      }
      continue;
    }
    std::string value;
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size() && !LooksLikeFlag(args[i + 1])) {
      value = args[++i];
    } else {
      error = fmt::format("{} needs a value {}", name, flag.value_name());
      continue;
    }
    error = flag.Set(value);
  }
  if (!error.empty()) return absl::InvalidArgumentError(error);
  for (size_t f = 0; f < table.flags.size(); ++f) {
    if (table.flags[f].required() && !given[f]) {
      return absl::InvalidArgumentError(
          fmt::format("{} is required", Synopsis(table.flags[f])));
    }
  }
  return false;
}

std::string Usage(const FlagTable& table) {
  std::string usage = "usage: " + table.command;
  bool optional = false;
  for (const Flag& flag : table.flags) {
    if (flag.required()) {
      usage += " " + Synopsis(flag);
    } else {
      optional = true;
    }
  }
  if (optional) usage += " [options]";
  usage += "\n\n" + table.about;
  if (!table.about.empty() && table.about.back() != '\n') usage += "\n";
  usage += "\nflags:\n";
  for (const Flag& flag : table.flags) usage += FlagEntry(flag);
  usage += FlagEntry(Flag(Flag::Kind::kSwitch, "-h, --help", "", "show this help and exit"));
  return usage;
}

std::string ClosestName(const std::string& word, const std::vector<std::string>& candidates) {
  // Compared without leading dashes, so "--" itself does not make every flag a prefix match.
  auto bare = [](const std::string& s) {
    return absl::AsciiStrToLower(s.substr(std::min(s.find_first_not_of('-'), s.size())));
  };
  std::vector<std::string> bare_candidates;
  for (const std::string& candidate : candidates) bare_candidates.push_back(bare(candidate));
  const std::string best = ClosestWord(bare(word), bare_candidates, /*min_prefix=*/3);
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!best.empty() && bare_candidates[i] == best) return candidates[i];
  }
  return "";
}

}  // namespace ulmfit::cli

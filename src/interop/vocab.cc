#include "interop/vocab.h"

#include "absl/strings/str_cat.h"
#include "interop/pickle.h"
#include "util/files.h"

namespace ulmfit {

absl::StatusOr<std::vector<std::string>> ParseVocabPickle(std::string_view bytes,
                                                          const std::string& name) {
  ASSIGN_OR_RETURN(Unpickled u, Unpickle(bytes, {name, 0, false}));
  const PickleValue& v = u.value;
  if (!v.is(PickleValue::Kind::kList) && !v.is(PickleValue::Kind::kTuple)) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": holds ", PickleValue::KindName(v.kind()), ", not a list of tokens"));
  }
  std::vector<std::string> tokens;
  tokens.reserve(v.items().size());
  for (const PickleValue& item : v.items()) {
    if (!item.is(PickleValue::Kind::kString)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": token ", tokens.size(), " is ",
                                                     PickleValue::KindName(item.kind()),
                                                     ", not a str"));
    }
    tokens.push_back(item.AsString());
  }
  if (tokens.empty()) return absl::InvalidArgumentError(name + ": the vocabulary is empty");
  return tokens;
}

absl::StatusOr<std::vector<std::string>> ParseVocabText(std::string_view text,
                                                        const std::string& name) {
  std::vector<std::string> tokens;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", tokens.size() + 1, ": an empty line; a vocab file holds one token a line"));
    }
    tokens.emplace_back(line);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  if (tokens.empty()) return absl::InvalidArgumentError(name + ": the vocabulary is empty");
  return tokens;
}

absl::StatusOr<std::vector<std::string>> ReadVocab(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (!bytes.empty() && static_cast<uint8_t>(bytes[0]) == 0x80) return ParseVocabPickle(bytes, path);
  return ParseVocabText(bytes, path);
}

absl::Status WriteVocabPickle(const std::string& path, const std::vector<std::string>& tokens) {
  PickleValue::Items items;
  items.reserve(tokens.size());
  for (const auto& t : tokens) items.push_back(PickleValue::String(t));
  ASSIGN_OR_RETURN(std::string bytes, Pickle(PickleValue::List(std::move(items))));
  return WriteFileAtomic(path, bytes);
}

}  // namespace ulmfit

#include "config/schema.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ulmfit {
namespace {

class SchemaBuilder {
 public:
  explicit SchemaBuilder(KeyInfo* level) : level_(level) {}

  template <typename T>
  void operator()(const char* key, T& field) {
    KeyInfo info;
    info.name = key;
    info.is_list = kIsList<T>;
    if constexpr (kIsSection<T>) {
      info.is_section = true;
      SchemaBuilder sub(&info);
      VisitFields(field, sub);
    }
    level_->children.push_back(std::move(info));
  }

 private:
  KeyInfo* level_;
};

void CollectValueKeys(const KeyInfo& level, const std::string& prefix,
                      std::vector<std::string>* keys) {
  for (const KeyInfo& child : level.children) {
    if (child.is_section) {
      CollectValueKeys(child, prefix + child.name + ".", keys);
    } else {
      keys->push_back(prefix + child.name);
    }
  }
}

// Full dotted paths of every key named `name` anywhere in the tree.
void FindEverywhere(const KeyInfo& level, const std::string& prefix, const std::string& name,
                    std::vector<std::string>* found) {
  for (const KeyInfo& child : level.children) {
    if (child.name == name) found->push_back(prefix + child.name);
    if (child.is_section) FindEverywhere(child, prefix + child.name + ".", name, found);
  }
}

}  // namespace

const KeyInfo* KeyInfo::Find(absl::string_view key) const {
  for (const KeyInfo& child : children) {
    if (child.name == key) return &child;
  }
  return nullptr;
}

const KeyInfo& Schema() {
  static const KeyInfo* const root = [] {
    auto* info = new KeyInfo;
    Config defaults;
    SchemaBuilder builder(info);
    VisitFields(defaults, builder);
    return info;
  }();
  return *root;
}

std::vector<std::string> AllValueKeys() {
  std::vector<std::string> keys;
  CollectValueKeys(Schema(), "", &keys);
  return keys;
}

std::string Suggestion(const std::string& key, const KeyInfo& level, const std::string& prefix,
                       const std::string& rest) {
  std::vector<std::string> names;
  for (const KeyInfo& child : level.children) names.push_back(child.name);
  std::string best = ClosestWord(key, names);
  if (!best.empty()) {
    best = prefix + best + rest;
  } else {
    std::vector<std::string> elsewhere;
    FindEverywhere(Schema(), "", absl::AsciiStrToLower(key), &elsewhere);
    if (elsewhere.empty()) return "";
    best = elsewhere.front() + rest;
  }
  return absl::StrCat(" (did you mean '", best, "'?)");
}

}  // namespace ulmfit

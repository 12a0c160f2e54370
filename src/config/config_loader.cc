#include "config/config_loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "config/schema.h"
#include "config/value_text.h"
#include "yaml-cpp/yaml.h"

namespace ulmfit {
namespace {

// What a node holds, for "got ..." in messages.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return absl::StrCat("'", node.Scalar(), "'");
    default:
      return "nothing";
  }
}

// A sequence as written, "[1, 0, every]", for messages about its items.
std::string DescribeSequence(const YAML::Node& sequence) {
  std::vector<std::string> items;
  for (const YAML::Node& item : sequence) {
    items.push_back(item.IsScalar() ? item.Scalar() : Describe(item));
  }
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

std::string MarkText(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
}

// ---------------------------------------------------------------------------------------------
// YAML tree -> Config.

struct LocatedError {
  YAML::Mark mark;  // for the order of messages; null for --set values
  std::string text;
};

struct LoadContext {
  std::string source;                              // file path or source name
  std::map<std::string, std::string> set_sources;  // "a.b" -> "--set a.b=v" that set it
  std::map<std::string, std::string> locations;    // becomes Config::key_locations
  // The file's shape (unknown or duplicate keys, a value where a section belongs): these stop
  // loading before the values are validated, whose messages would only be noise then.
  std::vector<LocatedError> shape_errors;
  // Values that are not of their key's type; reported together with ValidateConfig's.
  std::vector<LocatedError> value_errors;

  std::string Locate(const std::string& path, const YAML::Mark& mark) const {
    auto it = set_sources.find(path);
    if (it != set_sources.end()) return it->second;
    return MarkText(source, mark);
  }
};

// The messages in file order (--set ones first), so a long message reads naturally.
std::vector<std::string> InFileOrder(std::vector<LocatedError> errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.mark.line, a.mark.column) <
           std::make_pair(b.mark.line, b.mark.column);
  });
  std::vector<std::string> texts;
  for (const LocatedError& error : errors) texts.push_back(error.text);
  return texts;
}

// Reads one YAML map into the struct whose key table it is handed to (VisitFields(s, reader)).
// The constructor reports unknown and duplicate keys; operator() converts the known ones.
class YamlReader {
 public:
  YamlReader(const YAML::Node& map, const KeyInfo& level, std::string prefix, LoadContext* ctx)
      : level_(level), prefix_(std::move(prefix)), ctx_(ctx) {
    for (const auto& entry : map) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        ShapeError(key.Mark(), absl::StrCat(ctx_->Locate("", key.Mark()),
                                            ": keys must be plain names, got ", Describe(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string path = prefix_ + name;
      const std::string where = ctx_->Locate(path, key.Mark());
      if (level_.Find(name) == nullptr) {
        ShapeError(key.Mark(), absl::StrCat(where, ": unknown key '", path, "'",
                                            Suggestion(name, level_, prefix_)));
      } else if (!entries_.emplace(name, Entry{key, entry.second}).second) {
        ShapeError(key.Mark(), absl::StrCat(where, ": duplicate key '", path, "'"));
      }
    }
  }

  template <typename T>
  void operator()(const char* key, T& field) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;  // missing keys keep their default
    const std::string path = prefix_ + key;
    const YAML::Node& value = it->second.value;
    const YAML::Mark mark = it->second.key.Mark();
    const std::string where = ctx_->Locate(path, mark);
    ctx_->locations[path] = where;
    std::vector<std::string> errors;
    if constexpr (kIsSection<T>) {
      if (value.IsNull()) return;  // "model:" with nothing below keeps the defaults
      if (!value.IsMap()) {
        ShapeError(mark, absl::StrCat(where, ": ", path,
                                      ": expected a section (a map of keys), got ",
                                      Describe(value)));
        return;
      }
      YamlReader sub(value, *level_.Find(key), path + ".", ctx_);
      VisitFields(field, sub);
    } else if constexpr (kIsList<T>) {
      ReadList(path, value, &field, &errors);
    } else {
      if constexpr (std::is_same_v<T, std::string>) {
        if (value.IsNull()) {  // "valid:" with no value means empty
          field.clear();
          return;
        }
      }
      if (value.IsScalar()) {
        ParseValueText(path, value.Scalar(), &field, &errors);
      } else {
        errors.push_back(ValueMessage<T>(path, Describe(value), ""));
      }
    }
    for (std::string& error : errors) {
      ctx_->value_errors.push_back({mark, absl::StrCat(where, ": ", error)});
    }
  }

 private:
  struct Entry {
    YAML::Node key;
    YAML::Node value;
  };

  void ShapeError(const YAML::Mark& mark, std::string text) {
    ctx_->shape_errors.push_back({mark, std::move(text)});
  }

  // A list is a YAML sequence or one comma-separated string ("1,2,all"); no value is no items.
  template <typename Item>
  static void ReadList(const std::string& path, const YAML::Node& value, std::vector<Item>* field,
                       std::vector<std::string>* errors) {
    if (value.IsNull()) {
      field->clear();
    } else if (value.IsScalar()) {
      ParseValueText(path, value.Scalar(), field, errors);
    } else if (!value.IsSequence()) {
      errors->push_back(absl::StrCat(path, ": expected a list, got ", Describe(value)));
    } else {
      const std::string whole = DescribeSequence(value);
      std::vector<Item> items(value.size());
      const size_t bad_before = errors->size();
      for (size_t i = 0; i < value.size(); ++i) {
        const YAML::Node& item = value[i];
        if (!item.IsScalar()) {
          errors->push_back(ItemMessage<Item>(path, Describe(item), "", i, whole));
        } else if (!ParseScalar(item.Scalar(), &items[i])) {
          errors->push_back(ItemMessage<Item>(path, Describe(item), item.Scalar(), i, whole));
        }
      }
      if (errors->size() == bad_before) *field = std::move(items);
    }
  }

  const KeyInfo& level_;
  std::string prefix_;
  LoadContext* ctx_;
  std::map<std::string, Entry> entries_;
};

// Reads the whole tree into `config`, starting from its current values.
void ReadTree(const YAML::Node& root, Config* config, LoadContext* ctx) {
  YamlReader reader(root, Schema(), "", ctx);
  VisitFields(*config, reader);
}

// The key of a --set path ("a.b.c"), checked against the key tree; null after reporting why
// there is none.
const KeyInfo* FindSetKey(const std::string& where, const std::string& path,
                          const std::vector<std::string>& parts, LoadContext* ctx) {
  const KeyInfo* level = &Schema();
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    const KeyInfo* key = level->Find(parts[i]);
    const bool last = i + 1 == parts.size();
    std::string error;
    if (key == nullptr) {
      std::string rest;
      for (size_t j = i + 1; j < parts.size(); ++j) absl::StrAppend(&rest, ".", parts[j]);
      error = absl::StrCat(where, ": unknown key '", path, "'",
                           Suggestion(parts[i], *level, prefix, rest));
    } else if (key->is_section && last) {
      error = absl::StrCat(where, ": '", path, "' is a section; set one of its keys, e.g. '",
                           path, ".", key->children.front().name, "'");
    } else if (!key->is_section && !last) {
      error = absl::StrCat(where, ": unknown key '", path, "' ('", prefix, key->name,
                           "' is a value, not a section)");
    }
    if (!error.empty()) {
      ctx->shape_errors.push_back({YAML::Mark::null_mark(), std::move(error)});
      return nullptr;
    }
    level = key;
    prefix += parts[i] + ".";
  }
  return level;
}

// Applies one --set "a.b.c=value" to the YAML tree; errors go to ctx->shape_errors.
void ApplyOverride(const std::string& spec, YAML::Node root, LoadContext* ctx) {
  const std::string where = absl::StrCat("--set ", spec);
  const size_t eq = spec.find('=');
  const std::string path =
      std::string(absl::StripAsciiWhitespace(absl::string_view(spec).substr(0, eq)));
  auto fail = [&](const YAML::Mark& mark, std::string text) {
    ctx->shape_errors.push_back({mark, std::move(text)});
  };
  if (eq == std::string::npos || path.empty()) {
    fail(YAML::Mark::null_mark(),
         absl::StrCat(where, ": expected section.key=value, e.g. --set pretrain.lr=1e-3"));
    return;
  }
  const std::string value(absl::StripAsciiWhitespace(absl::string_view(spec).substr(eq + 1)));
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  // Check the whole path first, so nothing is created for a typo.
  const KeyInfo* key = FindSetKey(where, path, parts, ctx);
  if (key == nullptr) return;

  // A list also takes a flow sequence, "[1e-2, 5e-3]"; everything else is one scalar.
  YAML::Node new_value(value);
  if (key->is_list && absl::StartsWith(value, "[")) {
    try {
      new_value = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      fail(YAML::Mark::null_mark(), absl::StrCat(where, ": malformed list: ", e.msg));
      return;
    }
  }

  // Walk down, creating sections the file does not have. Node::reset rebinds a handle;
  // plain assignment would overwrite the node it points at.
  YAML::Node node = root;
  std::string section;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    section += (i ? "." : "") + parts[i];
    YAML::Node child = node[parts[i]];
    if (!child.IsMap()) {
      if (child.IsDefined() && !child.IsNull()) {
        fail(child.Mark(), absl::StrCat(ctx->Locate(section, child.Mark()), ": ", section,
                                        ": expected a section (a map of keys), got ",
                                        Describe(child)));
        return;
      }
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child.reset(node[parts[i]]);
    }
    node.reset(child);
  }
  node[parts.back()] = new_value;
  ctx->set_sources[path] = where;
}

// The parsed YAML document, or why it is not a config (malformed, empty, not a map).
// Offset of the first byte that cannot be in a text file (NUL, or not UTF-8), or -1.
int64_t FirstNonTextByte(const std::string& bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const int64_t n = static_cast<int64_t>(bytes.size());
  for (int64_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c == 0) return i;
    int extra = 0;  // continuation bytes of the sequence this byte starts
    if (c >= 0x80) {
      if (c >= 0xC2 && c <= 0xDF) {
        extra = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        extra = 2;
      } else if (c >= 0xF0 && c <= 0xF4) {
        extra = 3;
      } else {
        return i;
      }
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= n || (p[i + k] & 0xC0) != 0x80) return i;
    }
    i += 1 + extra;
  }
  return -1;
}

// What yaml-cpp says of a tab in the indentation is "illegal map value" or worse.
std::optional<std::string> TabIndentation(const std::string& yaml, const std::string& source) {
  int line = 1;
  for (size_t start = 0; start < yaml.size(); ++line) {
    size_t end = yaml.find('\n', start);
    if (end == std::string::npos) end = yaml.size();
    for (size_t i = start; i < end && (yaml[i] == ' ' || yaml[i] == '\t'); ++i) {
      if (yaml[i] == '\t') {
        return absl::StrCat(source, ":", line, ":", i - start + 1,
                            ": tabs are not allowed for indentation in YAML; indent with spaces");
      }
    }
    start = end + 1;
  }
  return std::nullopt;
}

absl::StatusOr<YAML::Node> ParseDocument(const std::string& yaml, const std::string& source) {
  if (const int64_t bad = FirstNonTextByte(yaml); bad >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": not a text file (byte ", bad,
        " is not UTF-8 text); --config takes a YAML file such as configs/default.yaml"));
  }
  if (const std::optional<std::string> tab = TabIndentation(yaml, source)) {
    return absl::InvalidArgumentError(*tab);
  }
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        JoinErrors({absl::StrCat(MarkText(source, e.mark), ": malformed YAML: ", e.msg)}));
  }
  std::vector<std::string> sections;
  for (const KeyInfo& key : Schema().children) sections.push_back(key.name);
  if (!root.IsDefined() || root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the config is empty; expected a map with keys such as ",
                     absl::StrJoin(sections, ", "), " (see docs/config.md)"));
  }
  if (!root.IsMap()) {  // JoinErrors: the scalar shown may span lines
    return absl::InvalidArgumentError(JoinErrors({absl::StrCat(
        MarkText(source, root.Mark()), ": the top level must be a map with keys such as ",
        absl::StrJoin(sections, ", "), ", got ", Describe(root))}));
  }
  return root;
}

}  // namespace

absl::StatusOr<Config> LoadConfigFromString(const std::string& yaml, const std::string& source_name,
                                            const std::vector<std::string>& overrides) {
  absl::StatusOr<YAML::Node> root = ParseDocument(yaml, source_name);
  if (!root.ok()) return root.status();

  LoadContext ctx;
  ctx.source = source_name;
  for (const std::string& spec : overrides) ApplyOverride(spec, *root, &ctx);
  if (!ctx.shape_errors.empty()) {
    return absl::InvalidArgumentError(JoinErrors(InFileOrder(ctx.shape_errors)));
  }

  // A first read finds the file's shape errors and its preset; the second applies the file on
  // top of that preset's defaults (fastai if the preset itself is bad, reported below).
  Config scratch;
  ReadTree(*root, &scratch, &ctx);
  if (!ctx.shape_errors.empty()) {
    std::vector<LocatedError> errors = ctx.shape_errors;
    errors.insert(errors.end(), ctx.value_errors.begin(), ctx.value_errors.end());
    return absl::InvalidArgumentError(JoinErrors(InFileOrder(std::move(errors))));
  }
  ctx.value_errors.clear();
  ctx.locations.clear();

  Config config;
  ApplyPreset(scratch.preset, &config);
  ReadTree(*root, &config, &ctx);
  config.source_path = source_name;
  config.key_locations = std::move(ctx.locations);
  std::vector<std::string> errors = InFileOrder(std::move(ctx.value_errors));
  for (std::string& error : ValidationErrors(config)) errors.push_back(std::move(error));
  if (!errors.empty()) return absl::InvalidArgumentError(JoinErrors(errors));
  return config;
}

absl::StatusOr<Config> LoadConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory; expected a YAML config file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read config file (does it exist?)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  return LoadConfigFromString(text.str(), path, overrides);
}

// ---------------------------------------------------------------------------------------------
// Config -> YAML.

namespace {

class YamlWriter {
 public:
  explicit YamlWriter(YAML::Emitter* out) : out_(out) {}

  template <typename T>
  void operator()(const char* key, T& field) {
    *out_ << YAML::Key << key << YAML::Value;
    if constexpr (kIsSection<T>) {
      *out_ << YAML::BeginMap;
      VisitFields(field, *this);
      *out_ << YAML::EndMap;
    } else if constexpr (kIsList<T>) {
      *out_ << YAML::Flow << YAML::BeginSeq;
      for (const auto& item : field) *out_ << FormatScalar(item);
      *out_ << YAML::EndSeq;
    } else {
      *out_ << FormatScalar(field);  // the emitter quotes strings that need it
    }
  }

 private:
  YAML::Emitter* out_;
};

}  // namespace

std::string ConfigToYaml(const Config& config) {
  Config copy = config;  // the key table hands out mutable references
  YAML::Emitter out;
  out << YAML::BeginMap;
  YamlWriter writer(&out);
  VisitFields(copy, writer);
  out << YAML::EndMap;
  return absl::StrCat(out.c_str(), "\n");
}

}  // namespace ulmfit

// PickleValue (interop/pickle.h): a small shared value type for what pickles hold.
#include "interop/pickle.h"

#include "absl/strings/str_format.h"

namespace ulmfit {

std::string Quoted(const std::string& text) {
  constexpr size_t kMax = 100;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + (text.size() > kMax ? "...'" : "'");
}

struct PickleValue::ItemsNode {
  Items items;
  ~ItemsNode() { ReleaseNested(items); }
};

// Destroys nested containers with a work list instead of recursion, so that a crafted file
// nesting lists a million deep cannot overflow the stack when its value is freed.
void ReleaseNested(std::vector<PickleValue>& values) {
  std::vector<PickleValue> work = std::move(values);
  values.clear();
  while (!work.empty()) {
    PickleValue v = std::move(work.back());
    work.pop_back();
    if (!v.node_ || v.node_.use_count() != 1) continue;  // shared: another owner frees it
    if (v.is(PickleValue::Kind::kList) || v.is(PickleValue::Kind::kTuple)) {
      auto& items = static_cast<PickleValue::ItemsNode*>(v.node_.get())->items;
      for (auto& item : items) work.push_back(std::move(item));
      items.clear();
    } else if (v.is(PickleValue::Kind::kDict)) {
      auto& entries = static_cast<PickleValue::Dict*>(v.node_.get())->entries;
      for (auto& entry : entries) work.push_back(std::move(entry.second));
      entries.clear();
    }
  }
}

PickleValue::Dict::~Dict() {
  std::vector<PickleValue> values;
  values.reserve(entries.size());
  for (auto& entry : entries) values.push_back(std::move(entry.second));
  entries.clear();
  ReleaseNested(values);
}

void PickleValue::Dict::Set(std::string key, PickleValue value) {
  auto [it, inserted] = index.try_emplace(key, entries.size());
  if (inserted) {
    entries.emplace_back(std::move(key), std::move(value));
  } else {
    entries[it->second].second = std::move(value);
  }
}

const PickleValue* PickleValue::Dict::Find(const std::string& key) const {
  auto it = index.find(key);
  return it == index.end() ? nullptr : &entries[it->second].second;
}

PickleValue PickleValue::Bool(bool b) {
  PickleValue v;
  v.kind_ = Kind::kBool;
  v.int_ = b;
  return v;
}

PickleValue PickleValue::Int(int64_t i) {
  PickleValue v;
  v.kind_ = Kind::kInt;
  v.int_ = i;
  return v;
}

PickleValue PickleValue::Float(double f) {
  PickleValue v;
  v.kind_ = Kind::kFloat;
  v.float_ = f;
  return v;
}

#define ULMFIT_PICKLE_NODE_FACTORY(Name, KindValue, Type, Arg)          \
  PickleValue PickleValue::Name(Type Arg) {                             \
    PickleValue v;                                                      \
    v.kind_ = Kind::KindValue;                                          \
    v.node_ = std::make_shared<Type>(std::move(Arg));                   \
    return v;                                                           \
  }
ULMFIT_PICKLE_NODE_FACTORY(String, kString, std::string, s)
ULMFIT_PICKLE_NODE_FACTORY(Bytes, kBytes, std::string, s)
ULMFIT_PICKLE_NODE_FACTORY(Global, kGlobal, std::string, s)
ULMFIT_PICKLE_NODE_FACTORY(Opaque, kOpaque, std::string, s)
ULMFIT_PICKLE_NODE_FACTORY(Tensor, kTensor, TensorRef, ref)
ULMFIT_PICKLE_NODE_FACTORY(Storage, kStorage, TensorRef, ref)
#undef ULMFIT_PICKLE_NODE_FACTORY

PickleValue PickleValue::List(Items items) {
  PickleValue v;
  v.kind_ = Kind::kList;
  auto node = std::make_shared<ItemsNode>();
  node->items = std::move(items);
  v.node_ = std::move(node);
  return v;
}

PickleValue PickleValue::Tuple(Items items) {
  PickleValue v = List(std::move(items));
  v.kind_ = Kind::kTuple;
  return v;
}

PickleValue PickleValue::NewDict(bool ordered) {
  PickleValue v;
  v.kind_ = Kind::kDict;
  auto node = std::make_shared<Dict>();
  node->ordered = ordered;
  v.node_ = std::move(node);
  return v;
}

const char* PickleValue::KindName(Kind kind) {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "a bool";
    case Kind::kInt: return "an int";
    case Kind::kFloat: return "a float";
    case Kind::kString: return "a str";
    case Kind::kBytes: return "a bytes object";
    case Kind::kList: return "a list";
    case Kind::kTuple: return "a tuple";
    case Kind::kDict: return "a dict";
    case Kind::kTensor: return "a tensor";
    case Kind::kStorage: return "a storage";
    case Kind::kGlobal: return "a class or function";
    case Kind::kOpaque: return "an object of an unknown class";
  }
  return "?";
}

// The accessors are only called after a kind check; a wrong kind is a programming error.
const std::string& PickleValue::AsString() const {
  TORCH_CHECK(is(Kind::kString) || is(Kind::kBytes) || is(Kind::kGlobal) || is(Kind::kOpaque),
              "PickleValue::AsString on ", KindName(kind_));
  return *static_cast<const std::string*>(node_.get());
}

const PickleValue::Items& PickleValue::items() const {
  TORCH_CHECK(is(Kind::kList) || is(Kind::kTuple), "PickleValue::items on ", KindName(kind_));
  return static_cast<const ItemsNode*>(node_.get())->items;
}

PickleValue::Items& PickleValue::mutable_items() {
  TORCH_CHECK(is(Kind::kList) || is(Kind::kTuple), "PickleValue::items on ", KindName(kind_));
  return static_cast<ItemsNode*>(node_.get())->items;
}

const PickleValue::Dict& PickleValue::dict() const {
  TORCH_CHECK(is(Kind::kDict), "PickleValue::dict on ", KindName(kind_));
  return *static_cast<const Dict*>(node_.get());
}

PickleValue::Dict& PickleValue::mutable_dict() {
  TORCH_CHECK(is(Kind::kDict), "PickleValue::dict on ", KindName(kind_));
  return *static_cast<Dict*>(node_.get());
}

const TensorRef& PickleValue::tensor() const {
  TORCH_CHECK(is(Kind::kTensor) || is(Kind::kStorage), "PickleValue::tensor on ",
              KindName(kind_));
  return *static_cast<const TensorRef*>(node_.get());
}

}  // namespace ulmfit

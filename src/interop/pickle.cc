#include "interop/pickle.h"

#include <cstring>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ulmfit {

// ---------------------------------------------------------------------------------------------
// Opcodes and the allow-list

namespace {

// Every opcode of protocols 0-5 (Lib/pickletools.py), so errors can name the ones we refuse.
enum Opcode : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I',
  BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P',
  BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
  EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i', LONG_BINGET = 'j',
  LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85,
  TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
  BINBYTES = 'B', SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

std::string OpName(uint8_t op) {
  static const std::pair<uint8_t, const char*> kNames[] = {
      {MARK, "MARK"}, {STOP, "STOP"}, {POP, "POP"}, {POP_MARK, "POP_MARK"}, {DUP, "DUP"},
      {FLOAT, "FLOAT"}, {INT, "INT"}, {BININT, "BININT"}, {BININT1, "BININT1"},
      {LONG, "LONG"}, {BININT2, "BININT2"}, {NONE, "NONE"}, {PERSID, "PERSID"},
      {BINPERSID, "BINPERSID"}, {REDUCE, "REDUCE"}, {STRING, "STRING"},
      {BINSTRING, "BINSTRING"}, {SHORT_BINSTRING, "SHORT_BINSTRING"}, {UNICODE, "UNICODE"},
      {BINUNICODE, "BINUNICODE"}, {APPEND, "APPEND"}, {BUILD, "BUILD"}, {GLOBAL, "GLOBAL"},
      {DICT, "DICT"}, {EMPTY_DICT, "EMPTY_DICT"}, {APPENDS, "APPENDS"}, {GET, "GET"},
      {BINGET, "BINGET"}, {INST, "INST"}, {LONG_BINGET, "LONG_BINGET"}, {LIST, "LIST"},
      {EMPTY_LIST, "EMPTY_LIST"}, {OBJ, "OBJ"}, {PUT, "PUT"}, {BINPUT, "BINPUT"},
      {LONG_BINPUT, "LONG_BINPUT"}, {SETITEM, "SETITEM"}, {TUPLE, "TUPLE"},
      {EMPTY_TUPLE, "EMPTY_TUPLE"}, {SETITEMS, "SETITEMS"}, {BINFLOAT, "BINFLOAT"},
      {PROTO, "PROTO"}, {NEWOBJ, "NEWOBJ"}, {EXT1, "EXT1"}, {EXT2, "EXT2"}, {EXT4, "EXT4"},
      {TUPLE1, "TUPLE1"}, {TUPLE2, "TUPLE2"}, {TUPLE3, "TUPLE3"}, {NEWTRUE, "NEWTRUE"},
      {NEWFALSE, "NEWFALSE"}, {LONG1, "LONG1"}, {LONG4, "LONG4"}, {BINBYTES, "BINBYTES"},
      {SHORT_BINBYTES, "SHORT_BINBYTES"}, {SHORT_BINUNICODE, "SHORT_BINUNICODE"},
      {BINUNICODE8, "BINUNICODE8"}, {BINBYTES8, "BINBYTES8"}, {EMPTY_SET, "EMPTY_SET"},
      {ADDITEMS, "ADDITEMS"}, {FROZENSET, "FROZENSET"}, {NEWOBJ_EX, "NEWOBJ_EX"},
      {STACK_GLOBAL, "STACK_GLOBAL"}, {MEMOIZE, "MEMOIZE"}, {FRAME, "FRAME"},
      {BYTEARRAY8, "BYTEARRAY8"}, {NEXT_BUFFER, "NEXT_BUFFER"},
      {READONLY_BUFFER, "READONLY_BUFFER"},
  };
  for (const auto& [code, name] : kNames) {
    if (code == op) return name;
  }
  return absl::StrFormat("0x%02x", op);
}

constexpr const char kOrderedDict[] = "collections.OrderedDict";
// Bounds the memory a crafted pickle can claim (~100 bytes a value) far above real files: a
// 60000-token vocab pushes 60000 values, a state dict about 20 per tensor.
constexpr size_t kMaxValues = size_t{1} << 24;
constexpr size_t kMaxDims = 64;  // libtorch's kernels take at most 25; no weight has more than 4
constexpr const char kRebuildTensorV2[] = "torch._utils._rebuild_tensor_v2";
constexpr const char kRebuildTensor[] = "torch._utils._rebuild_tensor";  // torch < 0.4
constexpr const char kRebuildParameter[] = "torch._utils._rebuild_parameter";

// The storage classes torch.save names in persistent ids (torch/storage.py). UntypedStorage
// (torch >= 2, a storage saved on its own) counts bytes.
struct StorageClass {
  const char* name;
  c10::ScalarType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", c10::ScalarType::Float},   {"HalfStorage", c10::ScalarType::Half},
    {"DoubleStorage", c10::ScalarType::Double}, {"BFloat16Storage", c10::ScalarType::BFloat16},
    {"LongStorage", c10::ScalarType::Long},     {"IntStorage", c10::ScalarType::Int},
    {"ShortStorage", c10::ScalarType::Short},   {"CharStorage", c10::ScalarType::Char},
    {"ByteStorage", c10::ScalarType::Byte},     {"BoolStorage", c10::ScalarType::Bool},
    {"UntypedStorage", c10::ScalarType::Byte},
};

const StorageClass* FindStorageClass(std::string_view qualified) {
  for (const auto& c : kStorageClasses) {
    const std::string name = c.name;
    if (qualified == "torch." + name || qualified == "torch.storage." + name) return &c;
  }
  return nullptr;
}

bool IsAllowedGlobal(const std::string& name) {
  return name == kOrderedDict || name == kRebuildTensorV2 || name == kRebuildTensor ||
         name == kRebuildParameter || FindStorageClass(name) != nullptr;
}

}  // namespace

std::string StorageClassName(c10::ScalarType dtype) {
  for (const auto& c : kStorageClasses) {
    if (c.dtype == dtype && std::string_view(c.name) != "UntypedStorage") return c.name;
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// The reader

namespace {

using Kind = PickleValue::Kind;
using Items = PickleValue::Items;

class Unpickler {
 public:
  Unpickler(std::string_view in, const UnpickleOptions& options) : in_(in), options_(options) {}

  // Containers are shared through the memo as in Python, so a pickle can put a list or dict
  // inside itself. Such a cycle would keep itself alive after the unpickler (a leak that
  // libFuzzer found), and no weights or vocab file holds one: a result with a cycle is an
  // error, and every container the result does not reach is emptied at the end.
  absl::StatusOr<Unpickled> Run() {
    absl::StatusOr<Unpickled> result = RunOpcodes();
    absl::flat_hash_set<const void*> reachable;
    if (result.ok() && !Acyclic(result->value, &reachable)) {
      op_pos_ = result->end - 1;
      result = Error("the pickle puts a container inside itself, which a weights or vocab file "
                     "does not do");
      reachable.clear();
    }
    for (PickleValue& container : containers_) {
      if (reachable.contains(Identity(container))) continue;
      if (container.is(Kind::kDict)) {
        container.mutable_dict().entries.clear();
        container.mutable_dict().index.clear();
      } else {
        container.mutable_items().clear();
      }
    }
    return result;
  }

 private:
  absl::StatusOr<Unpickled> RunOpcodes() {
    while (true) {
      op_pos_ = pos_;
      if (pos_ >= in_.size()) return Error("the data ends before the pickle's STOP");
      op_ = static_cast<uint8_t>(in_[pos_++]);
      if (op_ == STOP) break;
      RETURN_IF_ERROR(Step());
      if (pushes_ > kMaxValues) {
        return Error("the pickle builds more than 2^24 values; not a weights or vocab file");
      }
    }
    ASSIGN_OR_RETURN(PickleValue value, Pop());
    return Unpickled{std::move(value), pos_, std::move(storages_)};
  }

  static bool IsContainer(const PickleValue& v) {
    return v.is(Kind::kList) || v.is(Kind::kTuple) || v.is(Kind::kDict);
  }
  // The node a container shares with its copies.
  static const void* Identity(const PickleValue& v) {
    return v.is(Kind::kDict) ? static_cast<const void*>(&v.dict())
                             : static_cast<const void*>(&v.items());
  }
  static size_t ChildCount(const PickleValue& v) {
    return v.is(Kind::kDict) ? v.dict().entries.size() : v.items().size();
  }
  static const PickleValue& Child(const PickleValue& v, size_t i) {
    return v.is(Kind::kDict) ? v.dict().entries[i].second : v.items()[i];
  }

  // Whether no container in `root` holds itself (depth first, without recursion); fills
  // `reachable` with the containers found.
  static bool Acyclic(const PickleValue& root, absl::flat_hash_set<const void*>* reachable) {
    struct Frame {
      const PickleValue* value;
      size_t next;
    };
    std::vector<Frame> path;
    absl::flat_hash_set<const void*> on_path;
    auto enter = [&](const PickleValue& v) {  // false: `v` is on the path, a cycle
      if (!IsContainer(v)) return true;
      const void* id = Identity(v);
      if (on_path.contains(id)) return false;
      if (!reachable->insert(id).second) return true;  // done already (a shared container)
      on_path.insert(id);
      path.push_back({&v, 0});
      return true;
    };
    if (!enter(root)) return false;
    while (!path.empty()) {
      Frame& frame = path.back();
      if (frame.next == ChildCount(*frame.value)) {
        on_path.erase(Identity(*frame.value));
        path.pop_back();
        continue;
      }
      if (!enter(Child(*frame.value, frame.next++))) return false;
    }
    return true;
  }

  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(options_.where, ": byte ", options_.base_offset + op_pos_, ": ", what));
  }
  absl::Status OpError(const std::string& what) const {
    return Error(absl::StrCat(OpName(op_), " ", what));
  }

  absl::Status Step();
  absl::Status StepStringOrBytes();
  absl::Status StepContainer();
  absl::Status StepMemo();

  // --- reading the opcode's argument
  absl::StatusOr<std::string_view> Take(uint64_t n) {
    const uint64_t left = in_.size() - pos_;
    if (n > left) {
      return Error(absl::StrCat("the data ends inside the pickle (", OpName(op_), " needs ", n,
                                " bytes, ", left, " are left)"));
    }
    std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  absl::StatusOr<uint64_t> TakeLe(int n) {
    ASSIGN_OR_RETURN(std::string_view b, Take(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[i]);
    return v;
  }
  absl::StatusOr<std::string> TakeLine() {
    const size_t nl = in_.find('\n', pos_);
    if (nl == std::string_view::npos) return Error("the data ends inside a GLOBAL's name");
    std::string line(in_.substr(pos_, nl - pos_));
    pos_ = nl + 1;
    return line;
  }

  // --- the stack; a MARK hides what is below it
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<PickleValue> Pop() {
    if (stack_.size() <= Floor()) return OpError("finds the stack empty");
    PickleValue v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  absl::StatusOr<PickleValue*> Top() {
    if (stack_.size() <= Floor()) return OpError("finds the stack empty");
    return &stack_.back();
  }
  absl::StatusOr<Items> PopToMark() {
    if (marks_.empty()) return OpError("has no MARK to go back to");
    Items items(std::make_move_iterator(stack_.begin() + marks_.back()),
                std::make_move_iterator(stack_.end()));
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  void Push(PickleValue v) {
    if (IsContainer(v) && container_ids_.insert(Identity(v)).second) containers_.push_back(v);
    stack_.push_back(std::move(v));
    ++pushes_;
  }

  absl::Status AddItems(Items items);
  absl::Status SetItems(Items pairs);
  absl::StatusOr<std::string> DictKey(const PickleValue& key);
  absl::Status DoGlobal(const std::string& module, const std::string& name);
  absl::Status DoReduce();
  absl::Status DoBuild();
  absl::Status DoNewObj();
  absl::Status DoPersistentId();
  absl::StatusOr<PickleValue> RebuildTensor(const Items& args);

  std::string_view in_;
  const UnpickleOptions& options_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;
  size_t pushes_ = 0;
  absl::flat_hash_map<uint64_t, PickleValue> memo_;
  std::vector<StorageInfo> storages_;
  absl::flat_hash_map<std::string, size_t> storage_index_;
  std::vector<PickleValue> containers_;  // every list, tuple and dict built, for Run's cleanup
  absl::flat_hash_set<const void*> container_ids_;
};

absl::Status Unpickler::Step() {
  switch (op_) {
    case PROTO: {
      ASSIGN_OR_RETURN(uint64_t v, TakeLe(1));
      if (v < 2 || v > 5) return Error(absl::StrCat("pickle protocol ", v, " is not read (2 to 5 are)"));
      return absl::OkStatus();
    }
    case FRAME: return TakeLe(8).status();  // a length hint for buffered readers
    case NONE: Push(PickleValue()); return absl::OkStatus();
    case NEWTRUE: Push(PickleValue::Bool(true)); return absl::OkStatus();
    case NEWFALSE: Push(PickleValue::Bool(false)); return absl::OkStatus();
    case BININT: {
      ASSIGN_OR_RETURN(uint64_t v, TakeLe(4));
      Push(PickleValue::Int(static_cast<int32_t>(static_cast<uint32_t>(v))));
      return absl::OkStatus();
    }
    case BININT1:
    case BININT2: {
      ASSIGN_OR_RETURN(uint64_t v, TakeLe(op_ == BININT1 ? 1 : 2));
      Push(PickleValue::Int(static_cast<int64_t>(v)));
      return absl::OkStatus();
    }
    case LONG1: {
      ASSIGN_OR_RETURN(uint64_t n, TakeLe(1));
      if (n > 8) return OpError(absl::StrCat("holds an integer of ", n, " bytes; at most 8 are read"));
      uint64_t v = 0;
      if (n > 0) {
        ASSIGN_OR_RETURN(v, TakeLe(static_cast<int>(n)));
      }
      if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);  // sign
      Push(PickleValue::Int(static_cast<int64_t>(v)));
      return absl::OkStatus();
    }
    case BINFLOAT: {
      ASSIGN_OR_RETURN(std::string_view b, Take(8));
      uint64_t bits = 0;
      for (char c : b) bits = (bits << 8) | static_cast<uint8_t>(c);  // big-endian
      double d;
      std::memcpy(&d, &bits, sizeof d);
      Push(PickleValue::Float(d));
      return absl::OkStatus();
    }
    case SHORT_BINUNICODE: case BINUNICODE: case BINUNICODE8: case SHORT_BINSTRING:
    case BINSTRING: case SHORT_BINBYTES: case BINBYTES: case BINBYTES8:
      return StepStringOrBytes();
    case MARK: case POP: case POP_MARK: case EMPTY_LIST: case EMPTY_DICT: case EMPTY_TUPLE:
    case TUPLE: case TUPLE1: case TUPLE2: case TUPLE3: case LIST: case DICT: case APPEND:
    case APPENDS: case SETITEM: case SETITEMS:
      return StepContainer();
    case BINPUT: case LONG_BINPUT: case MEMOIZE: case BINGET: case LONG_BINGET:
      return StepMemo();
    case GLOBAL: {
      ASSIGN_OR_RETURN(std::string module, TakeLine());
      ASSIGN_OR_RETURN(std::string name, TakeLine());
      return DoGlobal(module, name);
    }
    case STACK_GLOBAL: {
      ASSIGN_OR_RETURN(PickleValue name, Pop());
      ASSIGN_OR_RETURN(PickleValue module, Pop());
      if (!name.is(Kind::kString) || !module.is(Kind::kString)) {
        return OpError("expects two strings (module and name)");
      }
      return DoGlobal(module.AsString(), name.AsString());
    }
    case REDUCE: return DoReduce();
    case BUILD: return DoBuild();
    case NEWOBJ: return DoNewObj();
    case BINPERSID: return DoPersistentId();
    default:
      return Error(absl::StrCat("the pickle uses opcode ", OpName(op_),
                                ", which a weights or vocab file does not need"));
  }
}

absl::Status Unpickler::StepStringOrBytes() {
  int len_bytes = 1;
  if (op_ == BINUNICODE || op_ == BINSTRING || op_ == BINBYTES) len_bytes = 4;
  if (op_ == BINUNICODE8 || op_ == BINBYTES8) len_bytes = 8;
  ASSIGN_OR_RETURN(uint64_t n, TakeLe(len_bytes));
  if (op_ == BINSTRING && n > 0x7fffffff) return OpError("has a negative length");
  ASSIGN_OR_RETURN(std::string_view data, Take(n));
  const bool bytes = op_ == SHORT_BINBYTES || op_ == BINBYTES || op_ == BINBYTES8;
  // Python 2's str (BINSTRING) holds storage keys in old files; torch.load decodes it as text.
  Push(bytes ? PickleValue::Bytes(std::string(data)) : PickleValue::String(std::string(data)));
  return absl::OkStatus();
}

absl::Status Unpickler::StepContainer() {
  switch (op_) {
    case MARK: marks_.push_back(stack_.size()); return absl::OkStatus();
    case POP:
      if (stack_.size() > Floor()) {
        stack_.pop_back();
        return absl::OkStatus();
      }
      return PopToMark().status();  // Python's load_pop: an empty frame drops its MARK
    case POP_MARK: return PopToMark().status();
    case EMPTY_LIST: Push(PickleValue::List()); return absl::OkStatus();
    case EMPTY_DICT: Push(PickleValue::NewDict(false)); return absl::OkStatus();
    case EMPTY_TUPLE: Push(PickleValue::Tuple({})); return absl::OkStatus();
    case TUPLE1: case TUPLE2: case TUPLE3: {
      const size_t n = op_ - TUPLE1 + 1;
      if (stack_.size() < Floor() + n) return OpError("finds too few items on the stack");
      Items items(std::make_move_iterator(stack_.end() - n), std::make_move_iterator(stack_.end()));
      stack_.resize(stack_.size() - n);
      Push(PickleValue::Tuple(std::move(items)));
      return absl::OkStatus();
    }
    case TUPLE:
    case LIST: {
      ASSIGN_OR_RETURN(Items items, PopToMark());
      Push(op_ == TUPLE ? PickleValue::Tuple(std::move(items)) : PickleValue::List(std::move(items)));
      return absl::OkStatus();
    }
    case DICT: {
      ASSIGN_OR_RETURN(Items pairs, PopToMark());
      Push(PickleValue::NewDict(false));
      return SetItems(std::move(pairs));
    }
    case APPEND: {
      ASSIGN_OR_RETURN(PickleValue v, Pop());
      Items one;
      one.push_back(std::move(v));
      return AddItems(std::move(one));
    }
    case APPENDS: {
      ASSIGN_OR_RETURN(Items items, PopToMark());
      return AddItems(std::move(items));
    }
    case SETITEM: {
      ASSIGN_OR_RETURN(PickleValue value, Pop());
      ASSIGN_OR_RETURN(PickleValue key, Pop());
      return SetItems(Items{std::move(key), std::move(value)});
    }
    case SETITEMS: {
      ASSIGN_OR_RETURN(Items pairs, PopToMark());
      return SetItems(std::move(pairs));
    }
  }
  return OpError("is not handled");  // unreachable: Step only sends the opcodes above
}

absl::Status Unpickler::AddItems(Items items) {
  ASSIGN_OR_RETURN(PickleValue * list, Top());
  if (list->is(Kind::kOpaque)) return absl::OkStatus();  // an unknown list-like class: dropped
  if (!list->is(Kind::kList)) {
    return OpError(absl::StrCat("appends to ", PickleValue::KindName(list->kind()),
                                ", not a list"));
  }
  Items& target = list->mutable_items();
  for (auto& item : items) target.push_back(std::move(item));
  return absl::OkStatus();
}

absl::StatusOr<std::string> Unpickler::DictKey(const PickleValue& key) {
  if (key.is(Kind::kString)) return key.AsString();
  if (key.is(Kind::kInt)) return absl::StrCat(key.AsInt());
  return OpError(absl::StrCat("uses ", PickleValue::KindName(key.kind()),
                              " as a dictionary key; only str and int keys are read"));
}

absl::Status Unpickler::SetItems(Items pairs) {
  if (pairs.size() % 2 != 0) return OpError("finds a key without a value");
  ASSIGN_OR_RETURN(PickleValue * dict, Top());
  if (dict->is(Kind::kOpaque)) return absl::OkStatus();  // an unknown dict-like class: dropped
  if (!dict->is(Kind::kDict)) {
    return OpError(absl::StrCat("sets an item in ", PickleValue::KindName(dict->kind()),
                                ", not a dictionary"));
  }
  PickleValue::Dict& target = dict->mutable_dict();
  for (size_t i = 0; i < pairs.size(); i += 2) {
    ASSIGN_OR_RETURN(std::string key, DictKey(pairs[i]));
    target.Set(std::move(key), std::move(pairs[i + 1]));
  }
  return absl::OkStatus();
}

absl::Status Unpickler::StepMemo() {
  if (op_ == BINPUT || op_ == LONG_BINPUT || op_ == MEMOIZE) {
    uint64_t index = memo_.size();
    if (op_ != MEMOIZE) {
      ASSIGN_OR_RETURN(index, TakeLe(op_ == BINPUT ? 1 : 4));
    }
    // libtorch's unpickler sized a vector by a damaged index of 829,320,821 and allocated for
    // 20 s before failing.
    if (options_.dense_memo && index > pushes_) {
      return OpError(absl::StrCat(index, " is past the ", pushes_,
                                  " values built so far; a writer numbers them from 0"));
    }
    ASSIGN_OR_RETURN(PickleValue * top, Top());
    memo_[index] = *top;  // shares containers, as Python's memo does
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(uint64_t index, TakeLe(op_ == BINGET ? 1 : 4));
  auto it = memo_.find(index);
  if (it == memo_.end()) {
    return OpError(absl::StrCat(index, " refers to no stored object (", memo_.size(),
                                " stored)"));
  }
  Push(it->second);
  return absl::OkStatus();
}

absl::Status Unpickler::DoGlobal(const std::string& module, const std::string& name) {
  const std::string qualified = absl::StrCat(module, ".", name);
  if (IsAllowedGlobal(qualified)) {
    Push(PickleValue::Global(qualified));
    return absl::OkStatus();
  }
  if (options_.opaque_globals) {
    Push(PickleValue::Opaque(qualified));
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      options_.where, ": byte ", options_.base_offset + op_pos_, ": the pickle names global ",
      Quoted(qualified), ", which a weights file may not use; only tensors and dictionaries are read"));
}

absl::Status Unpickler::DoReduce() {
  ASSIGN_OR_RETURN(PickleValue args, Pop());
  ASSIGN_OR_RETURN(PickleValue callable, Pop());
  if (callable.is(Kind::kOpaque)) {
    Push(callable);  // the object of an unknown class stays a name
    return absl::OkStatus();
  }
  if (!args.is(Kind::kTuple)) return OpError("expects a tuple of arguments");
  const std::string name = callable.is(Kind::kGlobal) ? callable.AsString() : "";
  if (name == kOrderedDict && args.items().empty()) {
    Push(PickleValue::NewDict(true));
    return absl::OkStatus();
  }
  if (name == kRebuildTensorV2 || name == kRebuildTensor) {
    ASSIGN_OR_RETURN(PickleValue tensor, RebuildTensor(args.items()));
    Push(std::move(tensor));
    return absl::OkStatus();
  }
  if (name == kRebuildParameter && !args.items().empty() &&
      args.items()[0].is(Kind::kTensor)) {
    Push(args.items()[0]);  // nn.Parameter(data): the data is what a state dict needs
    return absl::OkStatus();
  }
  const std::string what = name.empty() ? PickleValue::KindName(callable.kind()) : Quoted(name);
  return OpError(absl::StrCat("calls ", what, " with ", args.items().size(),
                              " arguments, which a weights file may not do"));
}

absl::Status Unpickler::DoNewObj() {
  ASSIGN_OR_RETURN(PickleValue args, Pop());
  ASSIGN_OR_RETURN(PickleValue cls, Pop());
  if (cls.is(Kind::kOpaque)) {
    Push(cls);
    return absl::OkStatus();
  }
  if (cls.is(Kind::kGlobal) && cls.AsString() == kOrderedDict) {
    Push(PickleValue::NewDict(true));
    return absl::OkStatus();
  }
  const std::string what =
      cls.is(Kind::kGlobal) ? Quoted(cls.AsString()) : PickleValue::KindName(cls.kind());
  return OpError(absl::StrCat("creates ", what, ", which a weights file may not do"));
}

absl::Status Unpickler::DoBuild() {
  ASSIGN_OR_RETURN(PickleValue state, Pop());
  ASSIGN_OR_RETURN(PickleValue * target, Top());
  // state_dict() sets OrderedDict._metadata (per-module versions), pickled as BUILD's state;
  // reading weights does not need it.
  if (target->is(Kind::kDict) && target->dict().ordered &&
      (state.is(Kind::kDict) || state.is(Kind::kTuple) || state.is(Kind::kNone))) {
    return absl::OkStatus();
  }
  if (target->is(Kind::kOpaque)) return absl::OkStatus();
  return OpError(absl::StrCat("sets the state of ", PickleValue::KindName(target->kind()),
                              ", which a weights file may not do"));
}

absl::Status Unpickler::DoPersistentId() {
  ASSIGN_OR_RETURN(PickleValue pid, Pop());
  const bool tuple = pid.is(Kind::kTuple) && !pid.items().empty();
  if (tuple && pid.items()[0].is(Kind::kString) && pid.items()[0].AsString() == "module") {
    return OpError("names a pickled nn.Module class (torch.save(model)); save the state_dict instead");
  }
  const Items* f = tuple ? &pid.items() : nullptr;
  const bool ok = f && (f->size() == 5 || f->size() == 6) && (*f)[0].is(Kind::kString) &&
                  (*f)[0].AsString() == "storage" && (*f)[1].is(Kind::kGlobal) &&
                  ((*f)[2].is(Kind::kString) || (*f)[2].is(Kind::kInt)) &&
                  (*f)[3].is(Kind::kString) && (*f)[4].is(Kind::kInt) && (*f)[4].AsInt() >= 0;
  const StorageClass* cls = ok ? FindStorageClass((*f)[1].AsString()) : nullptr;
  if (!cls) {
    return OpError("expects ('storage', torch.<T>Storage, key, location, numel[, view])");
  }
  TensorRef ref;
  ref.storage_key = (*f)[2].is(Kind::kInt) ? absl::StrCat((*f)[2].AsInt()) : (*f)[2].AsString();
  ref.dtype = cls->dtype;
  ref.storage_numel = (*f)[4].AsInt();
  ref.size = {ref.storage_numel};
  ref.stride = {1};
  // Legacy files of torch < 0.4 could name a view (key, offset, numel) of the storage.
  if (f->size() == 6 && !(*f)[5].is(Kind::kNone)) {
    const PickleValue& view = (*f)[5];
    if (!view.is(Kind::kTuple) || view.items().size() != 3 || !view.items()[1].is(Kind::kInt) ||
        !view.items()[2].is(Kind::kInt)) {
      return OpError("has a storage view that is not (key, offset, numel)");
    }
    const int64_t offset = view.items()[1].AsInt(), numel = view.items()[2].AsInt();
    if (offset < 0 || numel < 0 || offset > ref.storage_numel || numel > ref.storage_numel - offset) {
      return OpError(absl::StrCat("has a storage view [", offset, ", +", numel,
                                  ") outside its storage of ", ref.storage_numel, " elements"));
    }
    ref.storage_offset = offset;
    ref.size = {numel};
  }
  auto [it, inserted] = storage_index_.try_emplace(ref.storage_key, storages_.size());
  if (inserted) {
    storages_.push_back({ref.storage_key, ref.dtype, ref.storage_numel, (*f)[3].AsString()});
  } else if (storages_[it->second].dtype != ref.dtype ||
             storages_[it->second].numel != ref.storage_numel) {
    return OpError(absl::StrCat("names storage ", Quoted(ref.storage_key),
                                " again with another type or size"));
  }
  Push(PickleValue::Storage(std::move(ref)));
  return absl::OkStatus();
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
// [, metadata]) in torch/_utils.py; _rebuild_tensor has the first four.
absl::StatusOr<PickleValue> Unpickler::RebuildTensor(const Items& args) {
  auto is_int_tuple = [](const PickleValue& v) {
    if (!v.is(Kind::kTuple)) return false;
    for (const auto& x : v.items()) {
      if (!x.is(Kind::kInt)) return false;
    }
    return true;
  };
  if (args.size() < 4 || args.size() > 7 || !args[0].is(Kind::kStorage) ||
      !args[1].is(Kind::kInt) || !is_int_tuple(args[2]) || !is_int_tuple(args[3]) ||
      args[2].items().size() != args[3].items().size()) {
    return OpError("expects _rebuild_tensor_v2(storage, offset, size, stride, ...)");
  }
  if (args[2].items().size() > kMaxDims) {
    return OpError(absl::StrCat("describes a tensor of ", args[2].items().size(),
                                " dimensions; at most ", kMaxDims, " are read"));
  }
  const TensorRef& storage = args[0].tensor();
  const int64_t available = storage.size[0];  // elements from the storage (view) start
  TensorRef ref;
  ref.storage_key = storage.storage_key;
  ref.dtype = storage.dtype;
  ref.storage_numel = storage.storage_numel;
  const int64_t offset = args[1].AsInt();
  // Every element must lie inside the storage, and a tensor may not have more elements than
  // its storage (no expanded tensors), so no file can make us allocate more than it holds.
  __int128 last = offset, numel = 1;
  for (size_t d = 0; d < args[2].items().size(); ++d) {
    const int64_t size = args[2].items()[d].AsInt(), stride = args[3].items()[d].AsInt();
    if (size < 0 || stride < 0) return OpError("has a negative size or stride");
    ref.size.push_back(size);
    ref.stride.push_back(stride);
    if (size == 0) numel = 0;
    if (numel != 0) numel *= size;
    if (numel > available) numel = available + 1;  // keeps the product small; fails below
    last += static_cast<__int128>(size > 0 ? size - 1 : 0) * stride;
  }
  if (offset < 0 || (numel > 0 && (last >= available || numel > available))) {
    return OpError(absl::StrCat("describes a tensor outside its storage of ", available,
                                " elements"));
  }
  ref.storage_offset = storage.storage_offset + offset;
  return PickleValue::Tensor(std::move(ref));
}

}  // namespace

absl::StatusOr<Unpickled> Unpickle(std::string_view bytes, const UnpickleOptions& options) {
  return Unpickler(bytes, options).Run();
}

// ---------------------------------------------------------------------------------------------
// The writer

namespace {

class Pickler {
 public:
  Pickler() { Op(PROTO), out_.push_back(2); }

  absl::StatusOr<std::string> Finish(const PickleValue& value) {
    RETURN_IF_ERROR(Write(value));
    Op(STOP);
    return std::move(out_);
  }

 private:
  void Op(uint8_t op) { out_.push_back(static_cast<char>(op)); }
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void Int(int64_t i) {
    if (i >= 0 && i < 0x100) {
      Op(BININT1), Le(i, 1);
    } else if (i >= 0 && i < 0x10000) {
      Op(BININT2), Le(i, 2);
    } else if (i >= std::numeric_limits<int32_t>::min() && i <= std::numeric_limits<int32_t>::max()) {
      Op(BININT), Le(static_cast<uint32_t>(static_cast<int32_t>(i)), 4);
    } else {
      Op(LONG1), Le(8, 1), Le(static_cast<uint64_t>(i), 8);
    }
  }
  void Str(std::string_view s) {  // protocol 2 has BINUNICODE only
    Op(BINUNICODE), Le(s.size(), 4);
    out_.append(s);
  }
  void Global(const std::string& module, const std::string& name) {
    Op(GLOBAL);
    absl::StrAppend(&out_, module, "\n", name, "\n");
  }
  void IntTuple(const std::vector<int64_t>& v) {
    if (v.empty()) return Op(EMPTY_TUPLE);
    if (v.size() > 3) Op(MARK);
    for (int64_t x : v) Int(x);
    Op(v.size() > 3 ? TUPLE : static_cast<Opcode>(TUPLE1 + v.size() - 1));
  }
  void EmptyOrderedDict() { Global("collections", "OrderedDict"), Op(EMPTY_TUPLE), Op(REDUCE); }

  absl::Status Write(const PickleValue& v);
  absl::Status WriteTensor(const TensorRef& t);

  std::string out_;
};

absl::Status Pickler::Write(const PickleValue& v) {
  switch (v.kind()) {
    case Kind::kNone: Op(NONE); return absl::OkStatus();
    case Kind::kBool: Op(v.AsBool() ? NEWTRUE : NEWFALSE); return absl::OkStatus();
    case Kind::kInt: Int(v.AsInt()); return absl::OkStatus();
    case Kind::kFloat: {
      uint64_t bits;
      const double d = v.AsFloat();
      std::memcpy(&bits, &d, sizeof bits);
      Op(BINFLOAT);
      for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
      return absl::OkStatus();
    }
    case Kind::kString: Str(v.AsString()); return absl::OkStatus();
    case Kind::kList:
    case Kind::kTuple: {
      Op(v.is(Kind::kList) ? EMPTY_LIST : MARK);
      if (v.is(Kind::kList) && !v.items().empty()) Op(MARK);
      for (const auto& item : v.items()) RETURN_IF_ERROR(Write(item));
      if (v.is(Kind::kTuple)) Op(TUPLE);
      else if (!v.items().empty()) Op(APPENDS);
      return absl::OkStatus();
    }
    case Kind::kDict: {
      if (v.dict().ordered) EmptyOrderedDict();
      else Op(EMPTY_DICT);
      if (v.dict().entries.empty()) return absl::OkStatus();
      Op(MARK);
      for (const auto& [key, value] : v.dict().entries) {
        Str(key);
        RETURN_IF_ERROR(Write(value));
      }
      Op(SETITEMS);
      return absl::OkStatus();
    }
    case Kind::kTensor: return WriteTensor(v.tensor());
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ", PickleValue::KindName(v.kind()), " to a pickle"));
  }
}

// As torch.save writes a tensor (torch/_tensor.py __reduce_ex__, torch/serialization.py _save).
absl::Status Pickler::WriteTensor(const TensorRef& t) {
  const std::string storage_class = StorageClassName(t.dtype);
  if (storage_class.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write a tensor of type ", c10::toString(t.dtype)));
  }
  Global("torch._utils", "_rebuild_tensor_v2");
  Op(MARK);
  Op(MARK), Str("storage"), Global("torch", storage_class), Str(t.storage_key), Str("cpu");
  Int(t.storage_numel), Op(TUPLE), Op(BINPERSID);
  Int(t.storage_offset);
  IntTuple(t.size);
  IntTuple(t.stride);
  Op(NEWFALSE);        // requires_grad
  EmptyOrderedDict();  // backward_hooks
  Op(TUPLE), Op(REDUCE);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> Pickle(const PickleValue& value) { return Pickler().Finish(value); }

}  // namespace ulmfit

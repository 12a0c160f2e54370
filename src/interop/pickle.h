// A restricted reader and a small writer for Python pickles (protocols 2-5), enough for the
// files fastai and torch.save write: state dicts of tensors and vocab lists of str.
//
// The reader is a stack machine over the opcodes such files use (Python's Lib/pickletools.py
// documents each). It calls nothing: the few classes it knows (collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 and _rebuild_parameter, torch.*Storage) become plain values,
// and any other global is an error, so a weights file can hold data but never run code.
// docs/fastai_format.md lists what is accepted.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "util/status.h"

namespace ulmfit {

// A tensor as a pickle describes it. Its data is a storage that the pickle names by a key and
// that the surrounding file holds (interop/torch_file.h).
struct TensorRef {
  std::string storage_key;                      // "0", "1", ... (zip) or an address (legacy)
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t storage_numel = 0;                    // elements in the whole storage
  int64_t storage_offset = 0;                   // elements
  std::vector<int64_t> size, stride;
};

// A storage named by a persistent id: ('storage', torch.<T>Storage, key, location, numel).
struct StorageInfo {
  std::string key;
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t numel = 0;
  std::string location;  // "cpu", "cuda:0", ...; everything is read onto the CPU
};

// A value read from (or to be written to) a pickle. Strings, containers and tensors are shared
// between copies, as Python objects are between references; copying a value is cheap.
class PickleValue {
 public:
  enum class Kind : uint8_t {
    kNone, kBool, kInt, kFloat, kString, kBytes, kList, kTuple, kDict, kTensor,
    kStorage, // a persistent-id storage, held as a 1-D TensorRef over its elements
    kGlobal,  // an allow-listed class or function, by its qualified name
    kOpaque,  // an object of a class outside the allow-list, only with UnpickleOptions'
              // opaque_globals: its class name, nothing else of it is kept
  };
  using Items = std::vector<PickleValue>;
  // Insertion-ordered, string keys. A non-string key (the ints of a torch optimizer's state) is
  // kept as its decimal text.
  struct Dict {
    std::vector<std::pair<std::string, PickleValue>> entries;
    absl::flat_hash_map<std::string, size_t> index;  // key -> position in entries
    bool ordered = false;                            // collections.OrderedDict

    void Set(std::string key, PickleValue value);  // replaces in place, as Python does
    const PickleValue* Find(const std::string& key) const;
    ~Dict();
  };

  PickleValue() = default;
  static PickleValue Bool(bool b);
  static PickleValue Int(int64_t i);
  static PickleValue Float(double f);
  static PickleValue String(std::string s);
  static PickleValue Bytes(std::string s);
  static PickleValue List(Items items = {});
  static PickleValue Tuple(Items items);
  static PickleValue NewDict(bool ordered);
  static PickleValue Tensor(TensorRef ref);
  static PickleValue Storage(TensorRef ref);
  static PickleValue Global(std::string qualified_name);
  static PickleValue Opaque(std::string class_name);

  Kind kind() const { return kind_; }
  bool is(Kind k) const { return kind_ == k; }
  static const char* KindName(Kind kind);  // "a str", "an int", ... for messages

  bool AsBool() const { return int_ != 0; }
  int64_t AsInt() const { return int_; }
  double AsFloat() const { return float_; }
  // String, bytes, and the names of globals and opaque objects.
  const std::string& AsString() const;
  // List and tuple items. A change through mutable_* shows in every copy (Python semantics).
  const Items& items() const;
  Items& mutable_items();
  const Dict& dict() const;
  Dict& mutable_dict();
  // Tensors, and storages as 1-D views of all their elements.
  const TensorRef& tensor() const;

 private:
  struct ItemsNode;
  friend void ReleaseNested(std::vector<PickleValue>& values);

  Kind kind_ = Kind::kNone;
  int64_t int_ = 0;     // bool, int
  double float_ = 0;
  std::shared_ptr<void> node_;  // std::string, ItemsNode, Dict or TensorRef, by kind_
};

struct UnpickleOptions {
  // Error messages start with "<where>: byte <base_offset + offset>: ".
  std::string where;
  uint64_t base_offset = 0;
  // Keep objects of unknown classes as kOpaque values instead of failing at their GLOBAL. Still
  // nothing is called; the caller must check that no kOpaque ends up where it reads data.
  bool opaque_globals = false;
  // Refuse a memo index past the number of values built so far. Writers number memo entries
  // from 0, one per value; libtorch's own unpickler sizes a vector by the index, so its
  // archives are checked this way first (model/weights.h OpenArchive).
  bool dense_memo = false;
};

struct Unpickled {
  PickleValue value;
  size_t end = 0;                     // offset just past STOP, within the given bytes
  std::vector<StorageInfo> storages;  // persistent-id storages, first-seen order, each key once
};

// Reads one pickle from the start of `bytes`. Errors (truncation, an opcode or global outside
// the allow-list, a bad memo index, a malformed tensor) are one line naming the byte offset.
// A global outside the allow-list gives kPermissionDenied; every other error kInvalidArgument.
absl::StatusOr<Unpickled> Unpickle(std::string_view bytes, const UnpickleOptions& options);

// Writes `value` as a protocol 2 pickle that Python's pickle.load and torch.load read: dicts with
// `ordered` as collections.OrderedDict, tensors as torch.save's _rebuild_tensor_v2 call on a
// persistent-id storage located on "cpu". Bytes, globals and opaque values cannot be written.
absl::StatusOr<std::string> Pickle(const PickleValue& value);

// Text from a file in quotes for a one-line message: control bytes as \xNN, cut at 100 bytes.
std::string Quoted(const std::string& text);

// torch.<name> for a storage dtype ("FloatStorage"), or "" for a dtype torch.save never writes.
std::string StorageClassName(c10::ScalarType dtype);

}  // namespace ulmfit

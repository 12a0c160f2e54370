// Reading and writing the files Python's torch.save writes, without Python or libtorch's
// TorchScript reader (which reads neither the legacy format nor an OrderedDict state dict):
//  - the legacy format (torch < 1.6, torch/serialization.py _legacy_save): pickles of the magic
//    number, the protocol version (1001) and sys_info, then the object, then the list of storage
//    keys, then each storage as [int64 numel][numel * element size bytes] in that order;
//  - the zip format (torch >= 1.6, _save): <prefix>/data.pkl, each storage in
//    <prefix>/data/<key>, plus <prefix>/version and (torch >= 2.1) <prefix>/byteorder.
// Objects are read with the restricted unpickler of interop/pickle.h; everything loads onto the
// CPU whatever location the file names ("cuda:0").
#pragma once

#include <torch/torch.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "interop/pickle.h"
#include "util/status.h"

namespace ulmfit {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct TorchFile {
  std::string name;      // the path, for messages
  bool legacy = false;   // the format of torch < 1.6
  PickleValue root;      // the saved object; its tensors are TensorRefs into `storages`
  absl::flat_hash_map<std::string, torch::Tensor> storages;  // by key: 1-D, CPU, as stored

  // The tensor as a CPU tensor with its own contiguous memory, in the stored dtype.
  absl::StatusOr<torch::Tensor> Materialize(const TensorRef& ref) const;
};

// Either format, told apart by the first bytes. `name` starts every error message.
absl::StatusOr<TorchFile> ParseTorchFile(std::string_view bytes, const std::string& name);
absl::StatusOr<TorchFile> ReadTorchFile(const std::string& path);

// The state dict in a torch.save file, in file order, dtypes as stored: the top-level dict of
// tensors, or its 'model' entry when the file is learn.save's {'model': ..., 'opt': ...} (the
// optimizer state is read by the same rules, then dropped).
absl::StatusOr<NamedTensors> StateDictOf(const TorchFile& file);
absl::StatusOr<NamedTensors> ReadStateDict(const std::string& path);

// A zip-format torch.save file of an OrderedDict of CPU tensors, pickle protocol 2, that
// Python's torch.load reads (torch >= 1.6). Tensors that share memory with an earlier one of
// the same shape and type (tied weights) share its storage, as in PyTorch's own files.
absl::StatusOr<std::string> SerializeStateDict(const NamedTensors& tensors,
                                               const std::string& archive_name = "archive");
absl::Status WriteStateDict(const std::string& path, const NamedTensors& tensors);

}  // namespace ulmfit

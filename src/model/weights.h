// Model weights on disk: every parameter and buffer by name, in libtorch's archive format.
#pragma once

#include <string>

#include <torch/torch.h>

#include "util/status.h"

namespace ulmfit {

// Writes a libtorch archive through util/files.h's WriteFileAtomic: serialized in memory first,
// because libtorch's own file writer aborts the process when the disk fills (its destructor
// throws), and so that a failed write is one line naming the file.
absl::Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path);

// Saves every parameter and buffer by name.
absl::Status SaveModuleWeights(const torch::nn::Module& module, const std::string& path);
// Loads weights saved by SaveModuleWeights; a missing key or a shape mismatch is an error that
// names the file and the parameter, never a silent reshape.
absl::Status LoadModuleWeights(torch::nn::Module& module, const std::string& path);

}  // namespace ulmfit

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

// Opens a libtorch archive (OutputArchive::save_to: weights, optimizer or RNG state). Its zip
// directory and pickles are checked first with the project's bounded readers (interop/zip.h,
// interop/pickle.h): libtorch believes the lengths in a damaged file (a string length of 3.4 GB
// in data.pkl had it allocate 3.4 GB for seconds) and throws exceptions of several kinds.
// Errors are one line naming `path` and calling it `what` ("weights file"): NotFound for a
// missing file, DataLoss for anything else.
absl::Status OpenArchive(const std::string& path, const std::string& what,
                         torch::serialize::InputArchive* archive);

// The first non-blank line of an exception's message (libtorch's go on with backtraces and
// source excerpts, some start with a newline), for a one-line Status.
std::string FirstLineOf(const std::exception& e);

}  // namespace ulmfit

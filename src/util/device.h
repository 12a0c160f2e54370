// The torch device a run trains or predicts on.
#pragma once

#include <string>

#include <torch/torch.h>

#include "util/status.h"

namespace ulmfit {

// Resolves run.device ("auto", "cpu", "cuda", "cuda:N") to a torch device, with clear errors.
absl::StatusOr<torch::Device> ResolveDevice(const std::string& device);

}  // namespace ulmfit

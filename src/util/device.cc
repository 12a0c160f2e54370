#include "util/device.h"

#include <regex>

#include <fmt/format.h>

namespace ulmfit {

absl::StatusOr<torch::Device> ResolveDevice(const std::string& device) {
  if (device == "cpu") return torch::Device(torch::kCPU);
  if (device == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  const std::regex cuda_re("cuda(?::([0-9]+))?");
  std::smatch match;
  if (std::regex_match(device, match, cuda_re)) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(fmt::format(
          "run.device is '{}' but this libtorch has no usable CUDA device; use device: cpu or "
          "auto", device));
    }
    const int index = match[1].matched ? std::stoi(match[1].str()) : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(fmt::format(
          "run.device is '{}' but only {} CUDA device(s) exist", device,
          torch::cuda::device_count()));
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      fmt::format("run.device '{}' is not one of auto, cpu, cuda, cuda:N", device));
}

}  // namespace ulmfit

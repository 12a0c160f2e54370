#include "model/weights.h"

#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "util/files.h"

namespace ulmfit {
namespace fs = std::filesystem;

absl::Status SaveArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        fmt::format("{}: cannot serialize: {}", path, e.what_without_backtrace()));
  }
  return WriteFileAtomic(path, bytes.str());
}

absl::Status SaveModuleWeights(const torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    archive.write(item.key(), item.value().detach().cpu());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/true)) {
    archive.write(item.key(), item.value().detach().cpu(), /*is_buffer=*/true);
  }
  return SaveArchive(archive, path);
}

absl::Status LoadModuleWeights(torch::nn::Module& module, const std::string& path) {
  if (!fs::exists(path)) {
    return absl::NotFoundError(fmt::format("{}: weights file not found", path));
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    return absl::DataLossError(fmt::format(
        "{}: corrupt or unreadable weights file; delete it or restore a good copy", path));
  }
  torch::NoGradGuard no_grad;
  auto load_one = [&](const std::string& key, torch::Tensor& target,
                      bool is_buffer) -> absl::Status {
    torch::Tensor value;
    if (!archive.try_read(key, value, is_buffer)) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: has no '{}'; it was saved from a different model (check the model section of "
          "the config)", path, key));
    }
    if (value.sizes() != target.sizes()) {
      return absl::FailedPreconditionError(fmt::format(
          "{}: '{}' has shape {} but the model expects {}; it was saved with different model "
          "settings or vocabulary", path, key, fmt::join(value.sizes(), "x"),
          fmt::join(target.sizes(), "x")));
    }
    // A flipped bit or a diverged run: refuse the file rather than predict NaN.
    if (value.is_floating_point() && !torch::isfinite(value).all().item<bool>()) {
      return absl::DataLossError(fmt::format(
          "{}: '{}' holds NaN or infinite values; the file is damaged or comes from a diverged "
          "run: restore a good copy or train again", path, key));
    }
    target.copy_(value);
    return absl::OkStatus();
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    RETURN_IF_ERROR(load_one(item.key(), item.value(), false));
  }
  for (auto& item : module.named_buffers(/*recurse=*/true)) {
    RETURN_IF_ERROR(load_one(item.key(), item.value(), true));
  }
  return absl::OkStatus();
}

}  // namespace ulmfit

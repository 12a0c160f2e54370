#include "text/spm_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "text/spm_shim/spm_shim.h"

#ifndef ULMFIT_SPM_SHIM_BUILD_PATH
#define ULMFIT_SPM_SHIM_BUILD_PATH ""
#endif

namespace ulmfit {
namespace {

constexpr const char* kShimName = "libulmfit_spm.so";

struct ShimApi {
  decltype(&ulmfit_spm_train) train = nullptr;
  decltype(&ulmfit_spm_train_from_sentences) train_from_sentences = nullptr;
  decltype(&ulmfit_spm_free_buffer) free_buffer = nullptr;
  decltype(&ulmfit_spm_load) load = nullptr;
  decltype(&ulmfit_spm_free) free = nullptr;
  decltype(&ulmfit_spm_encode) encode = nullptr;
  decltype(&ulmfit_spm_decode) decode = nullptr;
  decltype(&ulmfit_spm_piece_size) piece_size = nullptr;
  decltype(&ulmfit_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&ulmfit_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&ulmfit_spm_unk_id) unk_id = nullptr;
  std::string error;
};

std::vector<std::string> CandidatePaths() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("ULMFIT_SPM_SHIM"); env && *env) paths.push_back(env);
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    exe[n] = '\0';
    paths.push_back((std::filesystem::path(exe).parent_path() / kShimName).string());
  }
  if (*ULMFIT_SPM_SHIM_BUILD_PATH) paths.push_back(ULMFIT_SPM_SHIM_BUILD_PATH);
  paths.push_back(kShimName);  // the dynamic loader's search path
  return paths;
}

const ShimApi& Api() {
  static ShimApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* handle = nullptr;
    std::string tried;
    for (const std::string& path : CandidatePaths()) {
      // RTLD_LOCAL keeps SentencePiece's protobuf out of the global namespace; RTLD_DEEPBIND
      // makes the shim and SentencePiece resolve their own symbols before libtorch's.
      handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (handle != nullptr) break;
      tried += fmt::format(" {} ({});", path, ::dlerror());
    }
    if (handle == nullptr) {
      api.error = fmt::format(
          "cannot load the SentencePiece shim {}; it is built next to the ulmfit binary (set "
          "ULMFIT_SPM_SHIM to its path). Tried:{}", kShimName, tried);
      return;
    }
    auto bind = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, name));
      if (fn == nullptr && api.error.empty()) {
        api.error = fmt::format("{}: missing symbol {}", kShimName, name);
      }
    };
    bind(api.train, "ulmfit_spm_train");
    bind(api.train_from_sentences, "ulmfit_spm_train_from_sentences");
    bind(api.free_buffer, "ulmfit_spm_free_buffer");
    bind(api.load, "ulmfit_spm_load");
    bind(api.free, "ulmfit_spm_free");
    bind(api.encode, "ulmfit_spm_encode");
    bind(api.decode, "ulmfit_spm_decode");
    bind(api.piece_size, "ulmfit_spm_piece_size");
    bind(api.piece_to_id, "ulmfit_spm_piece_to_id");
    bind(api.id_to_piece, "ulmfit_spm_id_to_piece");
    bind(api.unk_id, "ulmfit_spm_unk_id");
  });
  return api;
}

}  // namespace

absl::Status SpmTrain(const std::string& args) {
  const ShimApi& api = Api();
  if (!api.error.empty()) return absl::FailedPreconditionError(api.error);
  char error[2048] = {0};
  if (api.train(args.c_str(), error, sizeof(error)) != 0) {
    return absl::InternalError(fmt::format("SentencePiece training failed: {}", error));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpmTrainFromSentences(const std::string& args,
                                                  const std::vector<std::string>& sentences) {
  const ShimApi& api = Api();
  if (!api.error.empty()) return absl::FailedPreconditionError(api.error);
  std::vector<const char*> data;
  std::vector<size_t> sizes;
  data.reserve(sentences.size());
  sizes.reserve(sentences.size());
  for (const std::string& s : sentences) {
    data.push_back(s.data());
    sizes.push_back(s.size());
  }
  char error[2048] = {0};
  char* model = nullptr;
  size_t model_size = 0;
  if (api.train_from_sentences(args.c_str(), data.data(), sizes.data(), data.size(), &model,
                               &model_size, error, sizeof(error)) != 0) {
    return absl::InternalError(fmt::format("SentencePiece training failed: {}", error));
  }
  std::string serialized(model, model_size);
  api.free_buffer(model);
  return serialized;
}

absl::StatusOr<std::shared_ptr<SpmModel>> SpmModel::FromSerialized(const std::string& serialized,
                                                                   const std::string& source) {
  const ShimApi& api = Api();
  if (!api.error.empty()) return absl::FailedPreconditionError(api.error);
  char error[2048] = {0};
  UlmfitSpm* handle = api.load(serialized.data(), serialized.size(), error, sizeof(error));
  if (handle == nullptr) {
    return absl::DataLossError(fmt::format(
        "{}: not a valid SentencePiece model ({}); point text.spm_model at a .model file",
        source, error));
  }
  return std::shared_ptr<SpmModel>(new SpmModel(handle));
}

SpmModel::~SpmModel() { Api().free(handle_); }

std::vector<int32_t> SpmModel::Encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size() / 2 + 16);
  int64_t n = Api().encode(handle_, text.data(), text.size(), ids.data(),
                           static_cast<int64_t>(ids.size()));
  if (n > static_cast<int64_t>(ids.size())) {
    ids.resize(n);
    n = Api().encode(handle_, text.data(), text.size(), ids.data(), n);
  }
  ids.resize(std::max<int64_t>(n, 0));
  return ids;
}

std::string SpmModel::Decode(const std::vector<int32_t>& ids) const {
  std::string text(ids.size() * 8 + 16, '\0');
  int64_t n = Api().decode(handle_, ids.data(), ids.size(), text.data(),
                           static_cast<int64_t>(text.size()));
  if (n >= static_cast<int64_t>(text.size())) {
    text.assign(n + 1, '\0');
    n = Api().decode(handle_, ids.data(), ids.size(), text.data(), n + 1);
  }
  text.resize(std::max<int64_t>(n, 0));
  return text;
}

int32_t SpmModel::PieceSize() const { return Api().piece_size(handle_); }
int32_t SpmModel::PieceToId(const std::string& piece) const {
  return Api().piece_to_id(handle_, piece.c_str());
}
std::string SpmModel::IdToPiece(int32_t id) const { return Api().id_to_piece(handle_, id); }
int32_t SpmModel::UnkId() const { return Api().unk_id(handle_); }

}  // namespace ulmfit

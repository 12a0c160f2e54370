// The readers under fuzzing, as functions of one input's bytes, shared by the in-process fuzz
// suite (fuzz_test.cc) and the libFuzzer targets (targets/*_fuzzer.cc): the seed inputs, how an
// input reaches each reader (a string, or a file written to a scratch folder), and what counts
// as a bug besides a crash or a hang (Problem below). docs/fuzzing.md describes the whole.
#pragma once

#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "config/config_loader.h"
#include "data/corpus.h"
#include "data/labeled_data.h"
#include "data/text_file.h"
#include "interop/fastai_model.h"
#include "interop/pickle.h"
#include "interop/torch_file.h"
#include "interop/vocab.h"
#include "model/weights.h"
#include "train/checkpoint.h"

namespace ulmfit_fuzz {
namespace fs = std::filesystem;
using ulmfit::CorpusFormat;
using ulmfit::HeaderMode;
using ulmfit::TaskDataConfig;
using ulmfit::TaskFormat;

// ---------------------------------------------------------------------------------------------
// Seeds: small, valid inputs of each kind that reach most of their reader's branches.

inline const std::vector<std::string>& ConfigSeeds() {
  static const std::vector<std::string> seeds = {
      "# a tiny run\n"
      "preset: fastai\n"
      "run:\n  output_dir: /tmp/ulmfit_fuzz_run\n  device: cpu\n  threads: 1\n  seed: 42\n"
      "text:\n  vocab_size: 60\n  cache_dir: /tmp/ulmfit_fuzz_cache\n"
      "model:\n  emb_size: 16\n  hidden_size: 24\n  num_layers: 2\n  backwards: false\n"
      "pretrain:\n  data:\n    train: /tmp/general.txt\n  epochs: 2\n  batch_size: 8\n"
      "  bptt: 12\n"
      "task:\n  train: /tmp/train.tsv\n  test: /tmp/test.tsv\n  valid:\n"
      "finetune:\n  epochs: 2\n  batch_size: 8\n  bptt: 12\n  lr: 4.0e-3\n"
      "classifier:\n  batch_size: 16\n  bptt: 8\n  max_len: 16\n  drop_mult: 0.1\n"
      "  phase_epochs: \"1,1,1,10\"\n  phase_lrs: \"3e-2,3e-2,2e-2,2e-2\"\n",
      // Flow sequences, quoting, comments after values, a CSV task with named columns.
      "preset: paper   # the paper's hyperparameters\n"
      "run: {output_dir: 'runs/caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC', device: auto}\n"
      "task:\n"
      "  train: data/train.csv.gz\n"
      "  format: csv\n  header: \"yes\"\n  label_column: label\n"
      "  text_columns: [title, text]\n  valid_fraction: 0.1\n"
      "finetune:\n  pretrained: runs/wikitext103\n  drop_mult: 0.3\n"
      "classifier:\n"
      "  phase_groups: [1, 2, 3, all]\n  phase_epochs: \"1,1,1,45\"\n"
      "  phase_lrs: [1e-2, 1e-2, 1e-2, 5e-3]\n  mixed_precision: true\n",
  };
  return seeds;
}

// --set overrides that the config fuzzer mutates along with the file.
inline const std::vector<std::string>& OverrideSeeds() {
  static const std::vector<std::string> seeds = {
      "pretrain.lr=1e-3", "classifier.phase_lrs=[1e-2, 5e-3, 5e-3, 1e-3]", "task.valid=",
      "model.num_layers=3"};
  return seeds;
}

inline const std::vector<std::string>& TsvSeeds() {
  static const std::vector<std::string> seeds = {
      "label\ttitle\ttext\n"
      "pos\tA title\tWhat does the cat like about the river ?\n"
      "neg\tCaf\xC3\xA9\tthe dog \xE6\x97\xA5\xE6\x9C\xAC likes paris\r\n"
      "\n"
      " pos \t\tan empty title\n"
      "neg\tlast\tno final newline",
      // A byte-order mark, blank text and label cells, more columns than needed.
      "\xEF\xBB\xBF" "0\t1\t2\t3\n"
      "ANIMAL\tx\tWhat does the horse like ?\textra\n"
      "\tx\ta row without a label\n"
      "PLACE\tx\t   \n"
      "PLACE\ty\tthe mountain\t\n",
  };
  return seeds;
}

inline const std::vector<std::string>& CsvSeeds() {
  static const std::vector<std::string> seeds = {
      "label,title,text\n"
      "pos,\"Hello, world\",\"She said \"\"hi\"\" and left\"\n"
      "neg,plain title,\"a quoted field\nover two lines\"\r\n"
      "pos,caf\xC3\xA9,\xE6\x97\xA5\xE6\x9C\xAC text\n"
      "\n"
      "neg,,\"\"\n",
      "\xEF\xBB\xBF\"1\",\"a\",\"b\"\r\n"
      "\"2\",\"quoted \"\"title\"\"\",\"text, with commas\"\r\n"
      "3,unquoted \"inner\" quote,x\n",
  };
  return seeds;
}

inline const std::vector<std::string>& CorpusSeeds() {
  static const std::vector<std::string> seeds = {
      "the cat likes the river .\n"
      "\n"
      "   \t \n"
      "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 mountain\r\n"
      "what does the dog like about paris ?\n"
      "a last line without a newline",
      "one\ntwo\n\nthree\r\nfour\n",
  };
  return seeds;
}

// How a TSV/CSV input is read: the column settings of task data (TaskDataConfig).
inline TaskDataConfig LabeledVariant(int variant, bool csv) {
  TaskDataConfig config;
  config.format = csv ? TaskFormat::kCsv : TaskFormat::kTsv;
  switch (variant % 5) {
    case 0:  // indices, header auto (never a header)
      break;
    case 1:  // names: the first row must be a header
      config.label_column = "label";
      config.text_columns = {"text"};
      break;
    case 2:  // two text columns joined with xxfld, header forced
      config.label_column = "label";
      config.text_columns = {"title", "text"};
      config.header = HeaderMode::kYes;
      break;
    case 3:  // indices, no header, the label last
      config.label_column = "2";
      config.text_columns = {"0", "1"};
      config.header = HeaderMode::kNo;
      break;
    case 4:  // the format from the file name
      config.format = TaskFormat::kAuto;
      config.label_column = " 0 ";
      config.text_columns = {"1", "2"};
      break;
  }
  return config;
}

inline const char* const kVocabFixtures[] = {"itos_p2.pkl", "itos_p4.pkl"};
inline const char* const kTorchFixtures[] = {"lm_v2_h12_zip.pth", "lm_v1_h10_legacy.pth"};
inline const char* const kCheckpointFiles[] = {"state.json", "model.pt", "optimizer.pt",
                                               "state.pt"};

// ---------------------------------------------------------------------------------------------
// Files.

inline void WriteBytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `data` as a .gz file's bytes.
inline std::string Gzip(std::string_view data) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---------------------------------------------------------------------------------------------
// What counts as a bug.

// One input's result: the reader's status (OK = accepted), what its errors must name (the file
// or, for a string, its source name), and any broken promise found in what it accepted or in a
// second reader's error.
struct Verdict {
  absl::Status status;
  std::vector<std::string> sources;  // an error must name one of these
  std::string broken;
};

// Control bytes as \xNN and at most 300 bytes, for showing a message in a failure.
inline std::string Shown(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < 300; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return text.size() > 300 ? out + "..." : out;
}

// Why `status` breaks the readers' error promises, or "": one line that names one of
// `sources`, never an INTERNAL status or the words "internal error" (what cli/main.cc prints
// for an escaped exception) unless `input` has them (a message may quote the input).
inline std::string StatusProblem(const absl::Status& status,
                                 const std::vector<std::string>& sources, std::string_view input) {
  if (status.ok()) return "";
  const std::string msg(status.message());
  const std::string shown = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                         Shown(msg));
  if (msg.find_first_of("\n\r") != std::string::npos) return "a multi-line error: " + shown;
  constexpr std::string_view kInternal = "internal error";
  if (status.code() == absl::StatusCode::kInternal ||
      (absl::AsciiStrToLower(msg).find(kInternal) != std::string::npos &&
       absl::AsciiStrToLower(std::string(input)).find(kInternal) == std::string::npos)) {
    return "an internal error: " + shown;
  }
  for (const std::string& source : sources) {
    if (msg.find(source) != std::string::npos) return "";
  }
  return absl::StrCat("an error that does not name ", sources.empty() ? "?" : sources[0], ": ",
                      shown);
}

inline std::string Problem(const Verdict& v, std::string_view input) {
  return v.broken.empty() ? StatusProblem(v.status, v.sources, input) : v.broken;
}

// ---------------------------------------------------------------------------------------------
// The readers. Each returns the Verdict of one input; exceptions are let through (a bug).

// A config from a string, or from the file `dir`/fuzz.yaml when `via_file`.
inline Verdict ReadConfig(const std::string& yaml, const std::vector<std::string>& overrides,
                          bool via_file, const fs::path& dir) {
  Verdict v;
  absl::StatusOr<ulmfit::Config> config;
  if (via_file) {
    const std::string path = (dir / "fuzz.yaml").string();
    WriteBytes(path, yaml);
    config = ulmfit::LoadConfig(path, overrides);
    v.sources = {path};
  } else {
    config = ulmfit::LoadConfigFromString(yaml, "fuzz.yaml", overrides);
    v.sources = {"fuzz.yaml"};
  }
  if (!overrides.empty()) v.sources.push_back("--set ");  // "--set KEY=VALUE: ..."
  v.status = config.status();
  if (!config.ok()) return v;
  // config_loader.h: reading ConfigToYaml's text gives back the same values.
  const std::string resolved = ulmfit::ConfigToYaml(*config);
  absl::StatusOr<ulmfit::Config> again = ulmfit::LoadConfigFromString(resolved, "resolved.yaml");
  if (!again.ok()) {
    v.broken = "ConfigToYaml's text of an accepted config is refused: " +
               Shown(std::string(again.status().message()));
  } else if (ulmfit::ConfigToYaml(*again) != resolved) {
    v.broken = "ConfigToYaml's text does not read back to the same config: " + Shown(resolved);
  }
  return v;
}

// How a text input becomes a file: as it is, gzipped (valid gzip of the input), or as the raw
// bytes of a .gz file (mostly corrupt gzip).
enum class FileKind { kPlain, kGzipped, kRawGz };

inline std::string WriteTextInput(std::string_view input, FileKind kind, const fs::path& dir,
                                  const std::string& stem) {
  const std::string path = (dir / (kind == FileKind::kPlain ? stem : stem + ".gz")).string();
  WriteBytes(path, kind == FileKind::kGzipped ? Gzip(input) : std::string(input));
  return path;
}

inline Verdict ReadLabeled(std::string_view input, int variant, bool csv, FileKind kind,
                           const fs::path& dir) {
  const std::string path = WriteTextInput(input, kind, dir, csv ? "fuzz.csv" : "fuzz.tsv");
  absl::StatusOr<ulmfit::LabeledData> data =
      ulmfit::ReadLabeledData(path, LabeledVariant(variant, csv));
  Verdict v{data.status(), {path}, ""};
  if (!data.ok()) return v;
  // labeled_data.h: one label per text, none empty, labels trimmed; texts are UTF-8.
  if (data->texts.empty() || data->texts.size() != data->labels.size()) {
    v.broken = absl::StrCat("accepted with ", data->texts.size(), " texts and ",
                            data->labels.size(), " labels");
  }
  for (int64_t i = 0; i < data->size() && v.broken.empty(); ++i) {
    const std::string& label = data->labels[i];
    if (label.empty() || absl::ascii_isspace(static_cast<unsigned char>(label.front())) ||
        absl::ascii_isspace(static_cast<unsigned char>(label.back()))) {
      v.broken = "an empty or untrimmed label: '" + Shown(label) + "'";
    } else if (data->texts[i].empty() || ulmfit::FindInvalidUtf8(data->texts[i]) >= 0 ||
               ulmfit::FindInvalidUtf8(label) >= 0) {
      v.broken = "an empty or invalid UTF-8 text or label: '" + Shown(data->texts[i]) + "'";
    }
  }
  return v;
}

inline Verdict ReadCorpus(std::string_view input, FileKind kind, const fs::path& dir) {
  const std::string path = WriteTextInput(input, kind, dir, "corpus.txt");
  absl::StatusOr<std::vector<std::string>> docs =
      ulmfit::ReadDocuments(path, CorpusFormat::kLines, 0);
  Verdict v{docs.status(), {path}, ""};
  if (!docs.ok()) return v;
  // corpus.h: one document per non-blank line, UTF-8 checked.
  if (docs->empty()) v.broken = "accepted with no documents";
  for (const std::string& doc : *docs) {
    if (ulmfit::IsBlank(doc) || doc.find('\n') != std::string::npos ||
        ulmfit::FindInvalidUtf8(doc) >= 0) {
      v.broken = "a blank, multi-line or invalid UTF-8 document: '" + Shown(doc) + "'";
      break;
    }
  }
  return v;
}

// A vocab pickle through the strict and the lenient unpickler and the itos reader; with
// `via_file`, through ReadVocab (a pickle or a text vocab), as a fastai import reads it.
inline Verdict ReadVocabInput(std::string_view input, bool via_file, const fs::path& dir) {
  Verdict v;
  if (via_file) {
    const std::string path = (dir / "itos.pkl").string();
    WriteBytes(path, input);
    absl::StatusOr<std::vector<std::string>> tokens = ulmfit::ReadVocab(path);
    v = {tokens.status(), {path}, ""};
    if (tokens.ok() && tokens->empty()) v.broken = "an empty vocabulary accepted";
    return v;
  }
  v.sources = {"itos.pkl"};
  for (bool opaque : {false, true}) {
    absl::StatusOr<ulmfit::Unpickled> u = ulmfit::Unpickle(input, {"itos.pkl", 0, opaque});
    if (std::string p = StatusProblem(u.status(), v.sources, input); !p.empty()) {
      v.broken = absl::StrCat("Unpickle (opaque_globals ", opaque, "): ", p);
      return v;
    }
    if (u.ok() && u->end > input.size()) v.broken = "Unpickle's end lies past the input";
  }
  absl::StatusOr<std::vector<std::string>> tokens = ulmfit::ParseVocabPickle(input, "itos.pkl");
  v.status = tokens.status();
  if (tokens.ok() && tokens->empty()) v.broken = "an empty vocabulary accepted";
  return v;
}

// A torch.save file: parsed, its state dict materialized and imported as a fastai LM.
inline Verdict ReadTorchInput(std::string_view input) {
  Verdict v{absl::OkStatus(), {"lm.pth"}, ""};
  absl::StatusOr<ulmfit::TorchFile> file = ulmfit::ParseTorchFile(input, "lm.pth");
  v.status = file.status();
  if (!file.ok()) return v;
  absl::StatusOr<ulmfit::NamedTensors> state = ulmfit::StateDictOf(*file);
  v.status = state.status();
  if (!state.ok()) return v;
  for (const auto& [key, tensor] : *state) {
    if (!tensor.defined() || !tensor.is_contiguous() || !tensor.device().is_cpu()) {
      v.broken = "StateDictOf gave an undefined, strided or non-CPU tensor for '" +
                 Shown(key) + "'";
      return v;
    }
  }
  v.status = ulmfit::ImportFastaiLanguageModel(*state, "lm.pth").status();
  return v;
}

// A tiny model, its AdamW after one step, and the bytes of its checkpoint's files, saved in
// `dir`/ck. Each checkpoint input replaces one file and loads the whole checkpoint back.
struct TinyCheckpoint {
  torch::nn::Sequential model{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::string dir;
  std::map<std::string, std::string> files;  // pristine bytes by file name
  std::string dirty;                         // the file replaced by the last input
};

inline std::unique_ptr<TinyCheckpoint> MakeTinyCheckpoint(const fs::path& dir) {
  auto ck = std::make_unique<TinyCheckpoint>();
  torch::manual_seed(7);
  // One parameter: libtorch writes an optimizer's per-parameter state in the order of a hash
  // map keyed by tensor addresses, so with two the bytes of optimizer.pt, and with them every
  // mutation, would change from run to run. The buffers add an int64 tensor (num_batches_tracked).
  ck->model = torch::nn::Sequential(
      torch::nn::Embedding(10, 4),
      torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(4).affine(false)));
  ck->optimizer = std::make_unique<torch::optim::AdamW>(ck->model->parameters(),
                                                        torch::optim::AdamWOptions(0.1));
  ck->model->forward(torch::arange(4)).sum().backward();
  ck->optimizer->step();
  ulmfit::TrainingState state;
  state.stage = "pretrain";
  state.epoch = 1;
  state.global_step = 3;
  const std::vector<torch::Tensor> lstm_state = {torch::zeros({1, 2, 3}), torch::ones({1, 2, 3})};
  ck->dir = (dir / "ck").string();
  const absl::Status saved =
      ulmfit::SaveCheckpoint(ck->dir, *ck->model, *ck->optimizer, lstm_state, state);
  if (!saved.ok()) return nullptr;
  for (const char* file : kCheckpointFiles) ck->files[file] = ReadBytes(fs::path(ck->dir) / file);
  return ck;
}

// Whether every floating-point parameter and buffer of `module` is finite.
inline bool AllFinite(const torch::nn::Module& module) {
  for (const auto& t : module.parameters()) {
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return false;
  }
  for (const auto& t : module.buffers()) {
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return false;
  }
  return true;
}

inline Verdict ReadCheckpointInput(TinyCheckpoint& ck, const std::string& file,
                                   std::string_view input) {
  if (!ck.dirty.empty() && ck.dirty != file) {
    WriteBytes(fs::path(ck.dir) / ck.dirty, ck.files[ck.dirty]);
  }
  WriteBytes(fs::path(ck.dir) / file, input);
  ck.dirty = file;
  std::vector<torch::Tensor> lstm_state;
  absl::StatusOr<ulmfit::TrainingState> state =
      ulmfit::LoadCheckpoint(ck.dir, *ck.model, *ck.optimizer, &lstm_state);
  Verdict v{state.status(), {ck.dir}, ""};
  // weights.h: NaN or infinite weights are refused, never loaded.
  if (state.ok() && !AllFinite(*ck.model)) v.broken = "a checkpoint with non-finite weights loaded";
  return v;
}

inline Verdict ReadWeightsInput(TinyCheckpoint& ck, std::string_view input, const fs::path& dir) {
  const std::string path = (dir / "weights.pt").string();
  WriteBytes(path, input);
  Verdict v{ulmfit::LoadModuleWeights(*ck.model, path), {path}, ""};
  if (v.status.ok() && !AllFinite(*ck.model)) v.broken = "non-finite weights loaded";
  return v;
}

// ---------------------------------------------------------------------------------------------
// The fuzz targets: one input's bytes as a libFuzzer target reads them, and as the suite saves
// a failing input for replay. Some start with a selector byte that says how the rest is read:
//   config      the YAML text (LoadConfigFromString)
//   tsv, csv    byte % 5: the column settings (LabeledVariant); byte / 5 % 3: the FileKind
//   corpus      byte % 3: the FileKind
//   vocab       the pickle (Unpickle and ParseVocabPickle)
//   torch_file  the torch.save file
//   checkpoint  byte % 4: the file replaced (kCheckpointFiles); the rest is its content
//   weights     the libtorch archive given to LoadModuleWeights
inline const char* const kTargets[] = {"config", "tsv",        "csv",        "corpus",
                                       "vocab",  "torch_file", "checkpoint", "weights"};

// What the targets need besides the input: a scratch folder, and the tiny checkpoint (made on
// first use).
struct TargetContext {
  fs::path scratch;
  std::unique_ptr<TinyCheckpoint> checkpoint;
};

inline uint8_t LabeledSelector(int variant, FileKind kind) {
  return static_cast<uint8_t>(variant % 5 + 5 * static_cast<int>(kind));
}

inline Verdict RunTarget(const std::string& target, std::string_view input, TargetContext& ctx) {
  const uint8_t selector = input.empty() ? 0 : static_cast<uint8_t>(input[0]);
  const std::string_view rest = input.empty() ? input : input.substr(1);
  if (target == "config") return ReadConfig(std::string(input), {}, false, ctx.scratch);
  if (target == "tsv" || target == "csv") {
    return ReadLabeled(rest, selector % 5, target == "csv",
                       static_cast<FileKind>(selector / 5 % 3), ctx.scratch);
  }
  if (target == "corpus") return ReadCorpus(rest, static_cast<FileKind>(selector % 3), ctx.scratch);
  if (target == "vocab") return ReadVocabInput(input, false, ctx.scratch);
  if (target == "torch_file") return ReadTorchInput(input);
  if (target == "checkpoint" || target == "weights") {
    if (ctx.checkpoint == nullptr) ctx.checkpoint = MakeTinyCheckpoint(ctx.scratch);
    if (ctx.checkpoint == nullptr) {
      return {absl::OkStatus(), {}, "cannot save the tiny checkpoint in " + ctx.scratch.string()};
    }
    if (target == "weights") return ReadWeightsInput(*ctx.checkpoint, input, ctx.scratch);
    return ReadCheckpointInput(*ctx.checkpoint, kCheckpointFiles[selector % 4], rest);
  }
  return {absl::OkStatus(), {}, "no fuzz target '" + target + "'"};
}

}  // namespace ulmfit_fuzz

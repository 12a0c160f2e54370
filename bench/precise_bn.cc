// Applies precise BatchNorm statistics (src/train/precise_bn.h) to a trained model directory
// and writes the result as a new model directory, so that models trained before the option
// existed can be compared with and without it (run by hand; not a test).
//
//   precise_bn --model DIR --data TRAIN_FILE --out DIR [--docs N] [--seed S] [--threads N]
//
// TRAIN_FILE is the labelled file the model was trained on, in its task format; the labels are
// not used. --docs (default: the model's classifier.precise_bn_docs, or 2000 where that is 0)
// and --seed (default: the model's run.seed + 5) pick the sample, as stage 3 does.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/labeled_data.h"
#include "data/token_cache.h"
#include "model/weights.h"
#include "text/rules.h"
#include "train/checkpoint.h"
#include "infer/classifier.h"
#include "train/precise_bn.h"
#include "util/cpu_env.h"

namespace fs = std::filesystem;
using namespace ulmfit;

namespace {
int Fail(const std::string& message) {
  std::fprintf(stderr, "precise_bn: %s\n", message.c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  EnsureFastCpuEnvironment(argc, argv);
  std::string model_dir, data_path, out_dir;
  int64_t docs = -1;
  int64_t seed = -1;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--model") model_dir = value;
    else if (flag == "--data") data_path = value;
    else if (flag == "--out") out_dir = value;
    else if (flag == "--docs") docs = std::atoll(value.c_str());
    else if (flag == "--seed") seed = std::atoll(value.c_str());
    else if (flag == "--threads") threads = std::atoi(value.c_str());
    else return Fail("unknown flag " + flag);
  }
  if (model_dir.empty() || data_path.empty() || out_dir.empty()) {
    return Fail("usage: precise_bn --model DIR --data TRAIN_FILE --out DIR [--docs N] [--seed S]");
  }
  ConfigureThreads(threads);
  const torch::Device device(torch::kCPU);
  auto classifier = Classifier::Load(model_dir, device);
  if (!classifier.ok()) return Fail(std::string(classifier.status().message()));
  const Config& config = classifier->config();
  auto data = ReadLabeledData(data_path, config.task);
  if (!data.ok()) return Fail(std::string(data.status().message()));
  if (seed < 0) seed = static_cast<int64_t>(config.run.seed) + 5;
  if (docs < 0) {
    docs = config.classifier.precise_bn_docs > 0 ? config.classifier.precise_bn_docs : 2000;
  }
  std::vector<std::string> texts;
  for (int64_t i : PreciseBatchNormSample(data->size(), docs, static_cast<uint64_t>(seed))) {
    texts.push_back(data->texts[i]);
  }
  const RuleOptions rules{config.text.rules, config.text.lowercase};
  auto ids = TokenizeCorpus(texts, classifier->tokenizer(), rules, "", threads);
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  ClasBatcher batcher(&*ids, nullptr, config.classifier.batch_size, config.classifier.bptt,
                      /*shuffle=*/false, config.model.backwards, 0);
  TextClassifier& model = classifier->model();
  SetPreciseBatchNormStatistics(model, batcher, device);

  fs::create_directories(out_dir);
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    if (entry.path().filename() == kClassifierWeightsFile) continue;
    fs::copy_file(entry.path(), fs::path(out_dir) / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  if (auto status = SaveModuleWeights(*model, (fs::path(out_dir) / kClassifierWeightsFile).string());
      !status.ok()) {
    return Fail(std::string(status.message()));
  }
  std::printf("precise_bn: %lld documents of %s; model written to %s\n",
              static_cast<long long>(texts.size()), data_path.c_str(), out_dir.c_str());
  return 0;
}

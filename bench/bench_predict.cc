// Prediction-speed benchmark (run by hand; not a test): documents per second and peak memory
// of the classifier at inference, the way `ulmfit predict` runs it (eval mode, no grad,
// length-sorted batches, BPT3C chunks of bptt tokens).
//
//   bench_predict [--device cpu|cuda] [--docs N] [--doc-len L] [--batch-size B] [--threads N]
//                 [--model full|small] [--vocab V] [--classes C]
//   bench_predict --model-dir DIR --data FILE [--docs N] [--device D] [--batch-size B]
//
// The first form times a randomly initialised classifier (speed does not depend on the weights)
// on random token documents whose lengths are uniform in [L/2, 3L/2] (IMDb reviews average about
// 350 SentencePiece pieces; TREC questions about 17). The second form times a trained model
// directory end to end on the first N texts of a labelled file, rules and tokenization included.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>


#include "bench_util.h"
#include "config/config.h"
#include "data/clas_batcher.h"
#include "data/labeled_data.h"
#include "data/token_cache.h"
#include "model/classifier.h"
#include "text/rules.h"
#include "infer/classifier.h"
#include "util/cpu_env.h"

namespace ulmfit {
namespace {
using bench::CudaPeakMb;
using bench::MaxRssMb;
using bench::Sync;

struct Flags {
  std::string device = "cpu";
  int64_t docs = 512;
  int64_t doc_len = 300;
  int batch_size = 64;
  int threads = 0;
  std::string model = "full";
  int64_t vocab = 30000;
  int64_t classes = 2;
  std::string model_dir;
  std::string data;
};

using Clock = std::chrono::steady_clock;

void PrintRow(const std::string& what, const torch::Device& device, int64_t docs,
              int64_t tokens, double seconds, int batch_size) {
  std::printf("| %s | %s | %d | %lld | %.0f | %.1f | %.0f | %.0f | %s |\n", what.c_str(),
              device.str().c_str(), batch_size, static_cast<long long>(docs),
              static_cast<double>(tokens) / static_cast<double>(docs), docs / seconds,
              tokens / seconds, MaxRssMb(), CudaPeakMb(device).c_str());
}

// Random-weight model on random token documents.
int BenchSynthetic(const Flags& flags, const torch::Device& device) {
  Config config;
  if (flags.model == "small") {
    config.model.emb_size = 128;
    config.model.hidden_size = 512;
    config.model.num_layers = 2;
  }
  TextClassifier model(ClassifierOptions::FromConfig(config.model, config.classifier, flags.vocab,
                                                     flags.classes, kPadId));
  model->to(device);
  model->eval();
  std::mt19937_64 rng(1);
  TokenizedCorpus corpus;
  const int64_t lo = std::max<int64_t>(1, flags.doc_len / 2), hi = flags.doc_len * 3 / 2;
  for (int64_t d = 0; d < flags.docs; ++d) {
    const int64_t len = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
    for (int64_t t = 0; t < len; ++t) {
      corpus.ids.push_back(static_cast<int32_t>(5 + rng() % static_cast<uint64_t>(flags.vocab - 5)));
    }
    corpus.offsets.push_back(static_cast<int64_t>(corpus.ids.size()));
  }
  ClasBatcher batcher(&corpus, nullptr, flags.batch_size, config.classifier.bptt,
                      /*shuffle=*/false, /*backwards=*/false, 0);
  batcher.StartEpoch(0);
  {  // warm up: one batch (allocator, BLAS threads, cuDNN plans)
    torch::NoGradGuard no_grad;
    model->forward(batcher.Batch(0).tokens.to(device));
    Sync(device);
  }
  const auto start = Clock::now();
  const ClassifierEvaluation out = EvaluateClassifier(model, batcher, flags.classes, device);
  Sync(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  PrintRow(flags.model + " " + std::to_string(config.model.emb_size) + "/" +
               std::to_string(config.model.hidden_size) + "/" +
               std::to_string(config.model.num_layers) + ", random tokens",
           device, static_cast<int64_t>(out.predicted.size()),
           static_cast<int64_t>(corpus.ids.size()), seconds, flags.batch_size);
  return 0;
}

// A trained model directory, end to end on real text (rules + tokenization + model).
int BenchModelDir(const Flags& flags, const torch::Device& device) {
  const auto classifier = Classifier::Load(flags.model_dir, device);
  if (!classifier.ok()) {
    std::fprintf(stderr, "bench_predict: %s\n", std::string(classifier.status().message()).c_str());
    return 1;
  }
  auto data = ReadLabeledData(flags.data, classifier->config().task);
  if (!data.ok()) {
    std::fprintf(stderr, "bench_predict: %s\n", std::string(data.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> texts = data->texts;
  if (flags.docs > 0 && static_cast<int64_t>(texts.size()) > flags.docs) texts.resize(flags.docs);
  classifier->Predict({texts.front()}, 1);  // warm up
  Sync(device);
  const auto start = Clock::now();
  const ClassifierEvaluation out = classifier->Predict(texts, flags.batch_size);
  Sync(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t chars = 0;
  for (const auto& t : texts) chars += static_cast<int64_t>(t.size());
  std::printf("(%lld characters per document on average; the tokens column counts bytes)\n",
              static_cast<long long>(chars / static_cast<int64_t>(texts.size())));
  PrintRow(flags.model_dir + " on " + flags.data, device,
           static_cast<int64_t>(out.predicted.size()), chars, seconds, flags.batch_size);
  return 0;
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (v == nullptr) return false;
    ++i;
    if (arg == "--device") f->device = v;
    else if (arg == "--docs") f->docs = std::atoll(v);
    else if (arg == "--doc-len") f->doc_len = std::atoll(v);
    else if (arg == "--batch-size") f->batch_size = std::atoi(v);
    else if (arg == "--threads") f->threads = std::atoi(v);
    else if (arg == "--model") f->model = v;
    else if (arg == "--vocab") f->vocab = std::atoll(v);
    else if (arg == "--classes") f->classes = std::atoll(v);
    else if (arg == "--model-dir") f->model_dir = v;
    else if (arg == "--data") f->data = v;
    else return false;
  }
  return f->docs > 0 && f->doc_len > 1 && f->batch_size > 0 && f->vocab > 5 &&
         f->classes > 1 && (f->model == "full" || f->model == "small") &&
         f->model_dir.empty() == f->data.empty();
}

}  // namespace
}  // namespace ulmfit

int main(int argc, char** argv) {
  ulmfit::EnsureFastCpuEnvironment(argc, argv);
  ulmfit::Flags flags;
  if (!ulmfit::ParseFlags(argc, argv, &flags)) {
    std::fprintf(stderr,
                 "usage: bench_predict [--device cpu|cuda] [--docs N] [--doc-len L] "
                 "[--batch-size B] [--threads N] [--model full|small] [--vocab V] [--classes C]\n"
                 "       bench_predict --model-dir DIR --data FILE [--docs N] [--device D] "
                 "[--batch-size B]\n");
    return 2;
  }
  ulmfit::ConfigureThreads(flags.threads);
  const torch::Device device(flags.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    std::fprintf(stderr, "bench_predict: CUDA is not available\n");
    return 1;
  }
  std::printf("%s\n\n", ulmfit::DescribeComputeEnvironment().c_str());
  std::printf("| model | device | batch | docs | tokens/doc | docs/s | tokens/s | max RSS MB | "
              "CUDA peak MB |\n|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  return flags.model_dir.empty() ? ulmfit::BenchSynthetic(flags, device)
                                 : ulmfit::BenchModelDir(flags, device);
}

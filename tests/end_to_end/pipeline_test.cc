// End to end: all three stages on tiny synthetic data, then predict and evaluate.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "config/config_loader.h"
#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

TEST(PipelineTest, ThreeStagesThenPredictInInputOrderAndEvaluate) {
  const fs::path dir = TempDir("e2e");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  ASSERT_EQ(RunCli({"--config", (dir / "run.yaml").string()}, dir / "out", dir / "err"), 0)
      << Read(dir / "err");
  for (const char* file : {"pretrain/lm.pt", "finetune/lm.pt", "model/classifier.pt",
                           "model/spm.model", "model/labels.txt", "model/config.yaml",
                           "test_metrics.json", "confusion_matrix.csv"}) {
    EXPECT_TRUE(fs::exists(dir / "run" / file)) << file;
  }
  EXPECT_EQ(Read(dir / "run" / "model" / "labels.txt"), "ANIMAL\nPLACE\n");

  // Predict keeps input order even though batches are length-sorted: the same texts in reverse
  // order give the same lines in reverse order.
  const std::vector<std::string> texts = {
      "What does the cat like about the dog dog dog dog dog dog dog dog dog ?", "paris",
      "What does the horse like ?",
      "What does the river like about the mountain city london paris river ?"};
  std::ofstream forward(dir / "texts.txt"), backward(dir / "reversed.txt");
  for (size_t i = 0; i < texts.size(); ++i) {
    forward << texts[i] << "\n";
    backward << texts[texts.size() - 1 - i] << "\n";
  }
  forward.close();
  backward.close();
  auto predict = [&](const std::string& name) {
    EXPECT_EQ(RunCli({"predict", "--model", (dir / "run").string(), "--input",
                      (dir / name).string()},
                     dir / "pred.jsonl", dir / "pred.err"),
              0)
        << Read(dir / "pred.err");
    std::istringstream lines(Read(dir / "pred.jsonl"));
    std::vector<std::string> out;
    std::string line;
    while (std::getline(lines, line)) out.push_back(line);
    return out;
  };
  const std::vector<std::string> in_order = predict("texts.txt");
  std::vector<std::string> reversed = predict("reversed.txt");
  std::reverse(reversed.begin(), reversed.end());
  ASSERT_EQ(in_order.size(), texts.size());
  EXPECT_EQ(in_order, reversed);
  for (const std::string& line : in_order) {
    EXPECT_EQ(line.rfind("{\"label\": \"", 0), 0u) << line;
    EXPECT_NE(line.find("\"probs\": {\"ANIMAL\": "), std::string::npos) << line;
  }
  EXPECT_NE(in_order[0], in_order[1]);

  // Evaluate prints metrics as JSON; the classes are learnable, so well above chance (0.5).
  ASSERT_EQ(RunCli({"evaluate", "--model", (dir / "run").string(), "--data",
                 (dir / "test.tsv").string(), "--output", (dir / "eval.json").string()},
                dir / "eval.out", dir / "eval.err"),
            0)
      << Read(dir / "eval.err");
  const std::string eval = Read(dir / "eval.json");
  const double accuracy = std::stod(eval.substr(eval.find("\"accuracy\": ") + 12));
  EXPECT_GT(accuracy, 0.7) << eval;

  // A label training never saw is a clear error naming the file.
  std::ofstream(dir / "odd.tsv") << "ANIMAL\tthe cat ?\nVEHICLE\tthe car ?\n";
  EXPECT_EQ(RunCli({"evaluate", "--model", (dir / "run").string(), "--data",
                 (dir / "odd.tsv").string()},
                dir / "odd.out", dir / "odd.err"),
            1);
  EXPECT_NE(Read(dir / "odd.err").find("VEHICLE"), std::string::npos) << Read(dir / "odd.err");

  // A second classifier on this run's fine-tuned LM (classifier.language_model): stages 1 and
  // 2 are not run again. With no validation data every label trains and the last epoch is
  // kept; classifier.min_steps_per_epoch repeats the 160 examples (10 batches) to 30 steps.
  // (With 25 steps one AMD EPYC machine measured exactly 0.7 test accuracy, on the code before
  // and after the training loops were restructured: too close to the bound below.)
  const fs::path second = dir / "second";
  ASSERT_EQ(RunCli({"--config", (dir / "run.yaml").string(), "--set",
                    "run.output_dir=" + second.string(), "--set",
                    "classifier.language_model=" + (dir / "run").string(), "--set",
                    "task.valid_fraction=0", "--set", "classifier.min_steps_per_epoch=30",
                    "--set", "classifier.phase_epochs=1,1,1,2"},
                   dir / "second.out", dir / "second.err"),
            0)
      << Read(dir / "second.err");
  EXPECT_FALSE(fs::exists(second / "pretrain"));
  EXPECT_FALSE(fs::exists(second / "finetune"));
  EXPECT_TRUE(fs::exists(second / "model" / "classifier.pt"));
  std::istringstream metrics(Read(second / "metrics.jsonl"));
  int epochs = 0;
  for (std::string line; std::getline(metrics, line);) {
    if (line.find("\"event\": \"epoch\"") == std::string::npos) continue;
    ++epochs;
    EXPECT_NE(line.find("\"steps\": 30,"), std::string::npos) << line;
    EXPECT_EQ(line.find("valid_loss"), std::string::npos) << line;
  }
  EXPECT_EQ(epochs, 5);
  EXPECT_NE(Read(second / "classifier" / "best.json").find("\"epoch\": 5, \"metric\": \"last_epoch\""),
            std::string::npos);
  EXPECT_GT(JsonNumber(Read(second / "test_metrics.json"), "accuracy"), 0.7);

  // Precise BatchNorm statistics (on by default) change only the head's running statistics:
  // the same run with classifier.precise_bn_docs=0 trains exactly the same weights.
  const fs::path plain = dir / "plain";
  ASSERT_EQ(RunCli({"--config", (dir / "run.yaml").string(), "--set",
                    "run.output_dir=" + plain.string(), "--set",
                    "classifier.language_model=" + (dir / "run").string(), "--set",
                    "task.valid_fraction=0", "--set", "classifier.min_steps_per_epoch=30",
                    "--set", "classifier.phase_epochs=1,1,1,2", "--set",
                    "classifier.precise_bn_docs=0"},
                   dir / "plain.out", dir / "plain.err"),
            0)
      << Read(dir / "plain.err");
  torch::serialize::InputArchive with_bn, without_bn;
  with_bn.load_from((second / "model" / "classifier.pt").string());
  without_bn.load_from((plain / "model" / "classifier.pt").string());
  int stats_changed = 0;
  for (const std::string& key : with_bn.keys()) {
    torch::Tensor a, b;
    ASSERT_TRUE(with_bn.try_read(key, a)) << key;
    ASSERT_TRUE(without_bn.try_read(key, b)) << key;
    if (key.find("running_") != std::string::npos) {
      stats_changed += !torch::equal(a, b);
    } else {
      EXPECT_TRUE(torch::equal(a, b)) << key;
    }
  }
  EXPECT_EQ(stats_changed, 4);  // head.bn1 and head.bn2, mean and variance
}

// The paper's bidirectional classifier: a backward run (model.backwards) trained end to end,
// then evaluate and predict averaging it with the forward run.
TEST(PipelineTest, BackwardRunAndBidirectionalEnsemble) {
  const fs::path dir = TempDir("bidir");
  WriteTinySetup(dir, "fwd", /*backwards=*/false);
  WriteTinySetup(dir, "bwd", /*backwards=*/true);
  for (const char* run : {"fwd", "bwd"}) {
    ASSERT_EQ(RunCli({"--config", (dir / (std::string(run) + ".yaml")).string()}, dir / "out",
                     dir / "err"),
              0)
        << run << ": " << Read(dir / "err");
  }
  EXPECT_NE(Read(dir / "bwd" / "model" / "config.yaml").find("backwards: true"),
            std::string::npos);
  ASSERT_EQ(RunCli({"evaluate", "--model", (dir / "fwd").string(), "--model",
                    (dir / "bwd").string(), "--data", (dir / "test.tsv").string()},
                   dir / "eval.json", dir / "eval.err"),
            0)
      << Read(dir / "eval.err");
  const std::string eval = Read(dir / "eval.json");
  EXPECT_GT(JsonNumber(eval, "accuracy"), 0.7) << eval;
  EXPECT_GE(JsonNumber(eval, "model1_error_rate"), 0) << eval;
  EXPECT_GT(JsonNumber(eval, "model2_error_rate"), -1) << eval;
  EXPECT_LT(JsonNumber(eval, "model2_error_rate"), 0.3) << eval;

  // Predict with both: one line per text, probabilities that sum to one.
  std::ofstream(dir / "texts.txt") << "What does the cat like ?\nWhat does the city like ?\n";
  ASSERT_EQ(RunCli({"predict", "--model", (dir / "fwd").string(), "--model",
                    (dir / "bwd").string(), "--input", (dir / "texts.txt").string(), "--format",
                    "csv"},
                   dir / "pred.csv", dir / "pred.err"),
            0)
      << Read(dir / "pred.err");
  std::istringstream lines(Read(dir / "pred.csv"));
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "label,p_ANIMAL,p_PLACE");
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    const size_t a = line.find(','), b = line.find(',', a + 1);
    EXPECT_NEAR(std::stod(line.substr(a + 1)) + std::stod(line.substr(b + 1)), 1.0, 1e-4) << line;
  }
  EXPECT_EQ(rows, 2);

  // A backward task run cannot start from a forward pretrained LM.
  std::ofstream(dir / "mismatch.yaml")
      << "run:\n  output_dir: " << (dir / "mismatch").string() << "\n  device: cpu\n"
      << "model:\n  backwards: true\n"
      << "task:\n  train: " << (dir / "train.tsv").string() << "\n"
      << "finetune:\n  pretrained: " << (dir / "fwd").string() << "\n";
  EXPECT_EQ(RunCli({"--config", (dir / "mismatch.yaml").string()}, dir / "mm.out", dir / "mm.err"),
            1);
  EXPECT_NE(Read(dir / "mm.err").find("model.backwards"), std::string::npos)
      << Read(dir / "mm.err");
}

// finetune.pretrained: none, the no-pretraining baseline: stage 1 is skipped even though the
// config describes it, the tokenizer is trained on the task's text, and a classifier results.
TEST(PipelineTest, NoPretrainingBaselineSkipsStageOne) {
  const fs::path dir = TempDir("scratch");
  WriteTinySetup(dir, "scratch", /*backwards=*/false);
  ASSERT_EQ(RunCli({"--config", (dir / "scratch.yaml").string(), "--set",
                    "finetune.pretrained=none", "--set", "finetune.epochs=1"},
                   dir / "out", dir / "err"),
            0)
      << Read(dir / "err");
  // No pretrained encoder to freeze: the frozen epoch (1 by default) is skipped, and said so.
  EXPECT_NE(Read(dir / "err").find("finetune.frozen_epochs skipped"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "scratch" / "finetune" / "frozen"));
  EXPECT_FALSE(fs::exists(dir / "scratch" / "pretrain" / "lm.pt"));
  EXPECT_TRUE(fs::exists(dir / "scratch" / "tokenizer" / "spm.model"));
  EXPECT_TRUE(fs::exists(dir / "scratch" / "model" / "classifier.pt"));
  EXPECT_NE(Read(dir / "err").find("random weights"), std::string::npos);
  // With no pretrained run the model section's architecture applies; the log says which.
  EXPECT_NE(Read(dir / "err").find("(16/24/2: model.emb_size"), std::string::npos)
      << Read(dir / "err");

  // Run again: every stage is done and skipped. Change a classifier key: only stage 3 is stale
  // and runs again, and the log says which setting changed.
  const std::vector<std::string> args = {"--config", (dir / "scratch.yaml").string(), "--set",
                                         "finetune.pretrained=none", "--set", "finetune.epochs=1"};
  ASSERT_EQ(RunCli(args, dir / "out", dir / "err2"), 0) << Read(dir / "err2");
  EXPECT_NE(Read(dir / "err2").find("classify: "), std::string::npos);
  EXPECT_EQ(Read(dir / "err2").find("training this stage again"), std::string::npos)
      << Read(dir / "err2");
  EXPECT_EQ(Read(dir / "err2").find("classify ep 1/"), std::string::npos) << Read(dir / "err2");
  std::vector<std::string> changed = args;
  changed.insert(changed.end(), {"--set", "classifier.phase_epochs=1,1,1,3"});
  ASSERT_EQ(RunCli(changed, dir / "out", dir / "err3"), 0) << Read(dir / "err3");
  const std::string err3 = Read(dir / "err3");
  EXPECT_NE(err3.find("finetune: "), std::string::npos);
  EXPECT_NE(err3.find("stage already complete"), std::string::npos) << err3;
  EXPECT_NE(err3.find("classify: the settings changed"), std::string::npos) << err3;
  EXPECT_NE(err3.find("phase_epochs"), std::string::npos) << err3;
  EXPECT_NE(err3.find("classify ep 6/6"), std::string::npos) << err3;
  EXPECT_TRUE(fs::exists(dir / "scratch" / "model" / "classifier.pt"));
}

}  // namespace

namespace {

// The first losses of the tiny seeded run, pinned: a change to any seed stream, the data order,
// an initialisation or a loop shows here. Measured with the commit before the training loops
// were restructured (the restructuring had to leave them as they were). Numbers of one CPU:
// another BLAS or CPU may differ in the last digits, hence the tolerance.
TEST(PipelineTest, FirstLossesOfTheTinySeededRunArePinned) {
  const fs::path dir = TempDir("pinned");
  WriteTinySetup(dir, "run", /*backwards=*/false);
  ASSERT_EQ(RunCli({"--config", (dir / "run.yaml").string(), "--set",
                    "classifier.phase_epochs=1,1,1,1"},
                   dir / "out", dir / "err"),
            0)
      << Read(dir / "err");
  struct Pinned {
    const char* stage;
    const char* event;
    const char* key;
    double value;
  };
  const Pinned pinned[] = {{"pretrain", "train_epoch", "train_loss", 3.39933},
                           {"pretrain", "valid", "valid_loss", 3.01549},
                           {"finetune_frozen", "train_epoch", "train_loss", 3.23844},
                           {"finetune_frozen", "valid", "valid_loss", 2.89974},
                           {"finetune", "train_epoch", "train_loss", 2.88761},
                           {"finetune", "valid", "valid_loss", 2.87527},
                           {"classify", "epoch", "train_loss", 0.825644},
                           {"classify", "epoch", "valid_loss", 0.747616}};
  const std::vector<std::string> lines = Lines(Read(dir / "run" / "metrics.jsonl"));
  for (const Pinned& p : pinned) {
    const std::string prefix = std::string("{\"stage\": \"") + p.stage + "\", \"event\": \"" +
                               p.event + "\", \"epoch\": 1,";
    const auto line = std::find_if(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.rfind(prefix, 0) == 0;
    });
    ASSERT_NE(line, lines.end()) << prefix;
    EXPECT_NEAR(JsonNumber(*line, p.key), p.value, 5e-4) << *line;
  }
}

}  // namespace

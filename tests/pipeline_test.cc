// End to end: all three stages on tiny synthetic data, then predict and evaluate.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "config/config_loader.h"

namespace {
namespace fs = std::filesystem;

fs::path TempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("ulmfit_pipeline_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs the binary; stdin from `input` (if not empty), stdout to `out`, stderr to `err`.
int RunCli(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
        const fs::path& input = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<std::string> copy = args;
    std::string binary = ULMFIT_BINARY;
    std::vector<char*> argv{binary.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (!input.empty()) ::dup2(::open(input.c_str(), O_RDONLY), 0);
    ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 1);
    ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Two classes a model can learn from words alone: questions about animals vs. about places.
void WriteTask(const fs::path& path, int rows, unsigned seed) {
  const std::vector<std::string> animals = {"cat", "dog", "horse", "bird", "fish"};
  const std::vector<std::string> places = {"paris", "london", "river", "mountain", "city"};
  std::mt19937 rng(seed);
  std::ofstream out(path);
  for (int i = 0; i < rows; ++i) {
    const bool animal = rng() % 2 == 0;
    const auto& words = animal ? animals : places;
    out << (animal ? "ANIMAL" : "PLACE") << "\tWhat does the " << words[rng() % words.size()]
        << " like about the " << words[rng() % words.size()] << " ?\n";
  }
}

TEST(PipelineTest, ThreeStagesThenPredictInInputOrderAndEvaluate) {
  const fs::path dir = TempDir("e2e");
  {
    std::ofstream corpus(dir / "general.txt");
    std::mt19937 rng(5);
    const std::vector<std::string> words = {"the", "cat", "dog", "city", "river", "likes",
                                            "what", "does", "about", "mountain", "paris"};
    for (int line = 0; line < 300; ++line) {
      for (int w = 0; w < 12; ++w) corpus << words[rng() % words.size()] << " ";
      corpus << ".\n";
    }
  }
  WriteTask(dir / "train.tsv", 160, 1);
  WriteTask(dir / "test.tsv", 40, 2);
  std::ofstream(dir / "config.yaml")
      << "run:\n  output_dir: " << (dir / "run").string() << "\n  device: cpu\n  threads: 1\n"
      << "text:\n  vocab_size: 60\n  cache_dir: " << (dir / "cache").string() << "\n"
      << "model:\n  emb_size: 16\n  hidden_size: 24\n  num_layers: 2\n"
      << "pretrain:\n  data:\n    train: " << (dir / "general.txt").string()
      << "\n  epochs: 2\n  batch_size: 8\n  bptt: 12\n"
      << "task:\n  train: " << (dir / "train.tsv").string() << "\n  test: "
      << (dir / "test.tsv").string() << "\n"
      << "finetune:\n  epochs: 2\n  batch_size: 8\n  bptt: 12\n"
      << "classifier:\n  batch_size: 16\n  bptt: 8\n  max_len: 16\n  drop_mult: 0.1\n"
      << "  phase_epochs: \"1,1,1,10\"\n  phase_lrs: \"3e-2,3e-2,2e-2,2e-2\"\n";

  ASSERT_EQ(RunCli({"--config", (dir / "config.yaml").string()}, dir / "out", dir / "err"), 0)
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
}

}  // namespace

// Active learning end to end on the tiny three-stage setup: `ulmfit suggest` (every strategy,
// stable scores, chunking that does not change the choice), the `active-learn` simulation (its
// results and a rerun that continues instead of repeating), and `ulmfit label` driven through a
// pseudo-terminal with scripted keys, killed midway and restarted without losing or
// duplicating an answer.
#include <poll.h>
#include <pty.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "test_util.h"

namespace {
namespace fs = std::filesystem;
using namespace ulmfit_test;

class ActiveTest : public ::testing::Test {
 protected:
  // One trained tiny run shared by the tests (training it takes a few seconds).
  static void SetUpTestSuite() {
    dir_ = new fs::path(TempDir("active"));
    WriteTinySetup(*dir_, "run", /*backwards=*/false);
    ASSERT_EQ(RunCli({"--config", (*dir_ / "run.yaml").string()}, *dir_ / "out", *dir_ / "err"), 0)
        << Read(*dir_ / "err");
    // An unlabelled pool: the task's kind of question, plus near-duplicates.
    std::ofstream pool(*dir_ / "pool.txt");
    std::mt19937 rng(9);
    const std::vector<std::string> words = {"cat", "dog", "paris", "river", "city", "bird"};
    for (int i = 0; i < 40; ++i) {
      pool << "What does the " << words[rng() % words.size()] << " like about the "
           << words[rng() % words.size()] << " number " << i << " ?\n";
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path* dir_;
};
fs::path* ActiveTest::dir_ = nullptr;

TEST_F(ActiveTest, SuggestRanksThePoolWithEveryStrategy) {
  const fs::path& dir = *dir_;
  for (const std::string strategy :
       {"least_confidence", "margin", "entropy", "random", "diverse"}) {
    auto suggest = [&](const std::string& batch_size) {
      EXPECT_EQ(RunCli({"suggest", "--model", (dir / "run").string(), "--pool",
                        (dir / "pool.txt").string(), "--k", "5", "--strategy", strategy,
                        "--batch-size", batch_size, "--seed", "3"},
                       dir / "s.csv", dir / "s.err"),
                0)
          << strategy << ": " << Read(dir / "s.err");
      return Lines(Read(dir / "s.csv"));
    };
    const std::vector<std::string> rows = suggest("64");
    ASSERT_EQ(rows.size(), 6u) << strategy;
    EXPECT_EQ(rows[0], "rank,id,score,label,p_ANIMAL,p_PLACE,text");
    double previous = 1e9;
    std::set<std::string> ids;
    for (size_t r = 1; r < rows.size(); ++r) {
      const std::vector<std::string> f = SplitCsv(rows[r]);
      ASSERT_EQ(f.size(), 7u) << rows[r];
      EXPECT_EQ(f[0], std::to_string(r));
      ids.insert(f[1]);
      const double score = std::stod(f[2]), p0 = std::stod(f[4]), p1 = std::stod(f[5]);
      EXPECT_LE(score, previous + 1e-9) << strategy << " not best first";
      previous = score;
      EXPECT_NEAR(p0 + p1, 1.0, 1e-4);
      // The printed score is the strategy's formula on the printed probabilities.
      if (strategy == "least_confidence") EXPECT_NEAR(score, 1 - std::max(p0, p1), 1e-4);
      if (strategy == "margin") EXPECT_NEAR(score, 1 - std::fabs(p0 - p1), 1e-4);
      if (strategy == "entropy" || strategy == "diverse") {
        EXPECT_NEAR(score, -(p0 * std::log(p0) + p1 * std::log(p1)), 1e-4);
      }
    }
    EXPECT_EQ(ids.size(), 5u) << "a text suggested twice";
    // Stable for a fixed model and seed, and the pool's chunking (16 texts per chunk with
    // batch size 1) does not change which texts are chosen. (Other batch sizes may change
    // scores in the last float bits, so near-ties may swap places.) Checked for the two
    // strategies with state beyond the scores: seeded random scores and clustering.
    if (strategy != "random" && strategy != "diverse") continue;
    EXPECT_EQ(suggest("64"), rows) << strategy;
    const std::vector<std::string> chunked = suggest("1");
    ASSERT_EQ(chunked.size(), rows.size());
    std::set<std::string> chunked_ids;
    for (size_t r = 1; r < rows.size(); ++r) {
      chunked_ids.insert(SplitCsv(chunked[r])[1]);
      EXPECT_NEAR(std::stod(SplitCsv(chunked[r])[2]), std::stod(SplitCsv(rows[r])[2]), 1e-4);
    }
    EXPECT_EQ(chunked_ids, ids) << strategy;
  }
  // Bad input: one clear line.
  EXPECT_EQ(RunCli({"suggest", "--model", (dir / "run").string(), "--pool",
                    (dir / "missing.txt").string(), "--k", "3"},
                   dir / "s.csv", dir / "s.err"),
            1);
  EXPECT_NE(Read(dir / "s.err").find("missing.txt"), std::string::npos);
  EXPECT_EQ(RunCli({"suggest", "--model", (dir / "run").string(), "--pool",
                    (dir / "pool.txt").string(), "--k", "3", "--strategy", "entropyy"},
                   dir / "s.csv", dir / "s.err"),
            2);
  EXPECT_NE(Read(dir / "s.err").find("entropy"), std::string::npos);
}

TEST_F(ActiveTest, SimulationWritesResultsAndARerunContinues) {
  const fs::path& dir = *dir_;
  const std::vector<std::string> args = {
      "active-learn", "--config", (dir / "run.yaml").string(), "--set", "active.seed_examples=10",
      "--set", "active.query_size=10", "--set", "active.rounds=2", "--set",
      "active.strategies=random,entropy,diverse", "--set", "active.seeds=1", "--set",
      "classifier.phase_epochs=1,0,0,2"};
  ASSERT_EQ(RunCli(args, dir / "al.out", dir / "al.err"), 0) << Read(dir / "al.err");
  const fs::path active = dir / "run" / "active";
  const std::vector<std::string> rows = Lines(Read(active / "results.csv"));
  ASSERT_EQ(rows.size(), 1u + 3 * 3) << Read(active / "results.csv");  // 3 strategies x 3 rounds
  std::map<std::string, std::vector<int>> labels_by_strategy;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string> f = SplitCsv(rows[r]);
    ASSERT_EQ(f.size(), 8u);
    labels_by_strategy[f[0]].push_back(std::stoi(f[3]));
    const double error = std::stod(f[4]);
    EXPECT_GE(error, 0);
    EXPECT_LE(error, 1);
  }
  for (const auto& [strategy, labels] : labels_by_strategy) {
    EXPECT_EQ(labels, (std::vector<int>{10, 20, 30})) << strategy;
  }
  EXPECT_NE(Read(active / "results.md").find("| labels | random | entropy | diverse |"),
            std::string::npos);
  EXPECT_NE(Read(active / "error_vs_labels.svg").find("</svg>"), std::string::npos);
  // Each round's labelled set grows by the queried texts and never repeats one.
  const std::vector<std::string> last =
      Lines(Read(active / "entropy" / "seed-1" / "round-02" / "labelled.txt"));
  EXPECT_EQ(last.size(), 30u);
  EXPECT_EQ(std::set<std::string>(last.begin(), last.end()).size(), 30u);
  // No label is held out for validation: every one trains, and the last epoch is kept.
  const std::string round_metrics =
      Read(active / "entropy" / "seed-1" / "round-02" / "metrics.jsonl");
  EXPECT_NE(round_metrics.find("\"event\": \"epoch\""), std::string::npos) << round_metrics;
  EXPECT_EQ(round_metrics.find("valid_loss"), std::string::npos) << round_metrics;

  // A rerun finds every round done: same rows, nothing retrained.
  ASSERT_EQ(RunCli(args, dir / "al.out", dir / "al2.err"), 0) << Read(dir / "al2.err");
  EXPECT_EQ(Lines(Read(active / "results.csv")), rows);
  EXPECT_EQ(Read(dir / "al2.err").find("training on"), std::string::npos) << Read(dir / "al2.err");
}

TEST_F(ActiveTest, SuggestChoosesWithTheBatchStrategies) {
  const fs::path& dir = *dir_;
  for (const std::string strategy : {"bald", "badge", "kmeans"}) {
    auto suggest = [&] {
      EXPECT_EQ(RunCli({"suggest", "--model", (dir / "run").string(), "--pool",
                        (dir / "pool.txt").string(), "--k", "5", "--strategy", strategy,
                        "--seed", "3", "--mc-passes", "4"},
                       dir / "s.csv", dir / "s.err"),
                0)
          << strategy << ": " << Read(dir / "s.err");
      return Lines(Read(dir / "s.csv"));
    };
    const std::vector<std::string> rows = suggest();
    ASSERT_EQ(rows.size(), 6u) << strategy;
    std::set<std::string> ids;
    for (size_t r = 1; r < rows.size(); ++r) ids.insert(SplitCsv(rows[r])[1]);
    EXPECT_EQ(ids.size(), 5u) << strategy << ": a text suggested twice";
    // Seeded MC masks, k-means and k-means++: the same choice again.
    EXPECT_EQ(suggest(), rows) << strategy;
  }
}

TEST_F(ActiveTest, SimulationFromNoLabelsLetsTheStrategyChooseTheFirstOnes) {
  const fs::path& dir = *dir_;
  const std::vector<std::string> args = {
      "active-learn", "--config", (dir / "run.yaml").string(), "--set", "run.output_dir=" +
      (dir / "cold").string(), "--set", "classifier.language_model=" + (dir / "run").string(),
      "--set", "active.seed_examples=0", "--set", "active.query_size=8", "--set",
      "active.rounds=2", "--set", "active.strategies=random,kmeans,bald,badge", "--set",
      "active.mc_passes=3", "--set", "active.cold_start=kmeans", "--set", "active.seeds=1",
      "--set",
      "classifier.phase_epochs=1,0,0,1"};
  ASSERT_EQ(RunCli(args, dir / "cold.out", dir / "cold.err"), 0) << Read(dir / "cold.err");
  const fs::path active = dir / "cold" / "active";
  const std::vector<std::string> rows = Lines(Read(active / "results.csv"));
  // Round 0 has no labels to train on: rows for 8 and 16 labels per strategy.
  ASSERT_EQ(rows.size(), 1u + 4 * 2) << Read(active / "results.csv");
  std::map<std::string, std::vector<int>> labels_by_strategy;
  for (size_t r = 1; r < rows.size(); ++r) {
    const std::vector<std::string> f = SplitCsv(rows[r]);
    labels_by_strategy[f[0]].push_back(std::stoi(f[3]));
  }
  for (const auto& [strategy, labels] : labels_by_strategy) {
    EXPECT_EQ(labels, (std::vector<int>{8, 16})) << strategy;
  }
  // bald and badge have no classifier at round 0: the cold start (kmeans) chose for them.
  const auto first = [&](const std::string& strategy) {
    return Read(active / strategy / "seed-1" / "round-01" / "labelled.txt");
  };
  EXPECT_EQ(first("bald"), first("kmeans"));
  EXPECT_EQ(first("badge"), first("kmeans"));
  EXPECT_NE(first("random"), first("kmeans"));
  EXPECT_EQ(Lines(Read(active / "bald" / "seed-1" / "round-00" / "labelled.txt")).size(), 0u);
}

// A session in a pseudo-terminal: the test types keys and reads the screen.
class PtySession {
 public:
  explicit PtySession(const std::vector<std::string>& args) {
    pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<std::string> copy = args;
      std::string binary = ULMFIT_BINARY;
      std::vector<char*> argv{binary.data()};
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(binary.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~PtySession() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  // Reads until the screen has shown `prompts` prompts in all (or 60 s pass).
  bool WaitForPrompts(int prompts) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (CountPrompts() < prompts && std::chrono::steady_clock::now() < deadline) {
      if (!ReadSome()) return CountPrompts() >= prompts;
    }
    return CountPrompts() >= prompts;
  }
  void Type(char key) { ASSERT_EQ(::write(master_, &key, 1), 1); }
  // The text of the most recent suggestion on screen.
  std::string ShownText() const {
    const size_t marker = screen_.rfind("\n---");
    const size_t start = screen_.find("\n\n  ", marker);
    if (marker == std::string::npos || start == std::string::npos) return "";
    const size_t end = screen_.find('\n', start + 4);
    return screen_.substr(start + 4, end - start - 4);
  }
  void Kill() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int Wait() {
    while (ReadSome()) {
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& screen() const { return screen_; }

 private:
  int CountPrompts() const {
    int n = 0;
    for (size_t at = screen_.find("\n> "); at != std::string::npos; at = screen_.find("\n> ", at + 1)) ++n;
    return n;
  }
  bool ReadSome() {
    pollfd p{master_, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) return true;
    char buf[4096];
    const ssize_t n = ::read(master_, buf, sizeof(buf));
    if (n <= 0) return false;  // the child closed the terminal
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] != '\r') screen_ += buf[i];  // the terminal turns \n into \r\n
    }
    return true;
  }
  pid_t pid_ = -1;
  int master_ = -1;
  std::string screen_;
};

TEST_F(ActiveTest, LabelSessionSurvivesAKillWithoutLosingOrDuplicatingAnswers) {
  const fs::path& dir = *dir_;
  const fs::path answers = dir / "answers.tsv";
  fs::remove(answers);
  const std::vector<std::string> args = {
      "label", "--config", (dir / "run.yaml").string(), "--set",
      "task.train=" + answers.string(), "--set", "active.pool=" + (dir / "pool.txt").string(),
      "--set", "active.labels=ANIMAL,PLACE", "--set", "active.retrain_every=100", "--set",
      "active.query_size=5", "--set", "active.strategy=entropy"};
  std::vector<std::string> expected_lines, skipped;
  {
    PtySession session(args);
    ASSERT_TRUE(session.WaitForPrompts(1)) << session.screen();
    const std::string t1 = session.ShownText();
    session.Type('1');
    ASSERT_TRUE(session.WaitForPrompts(2)) << session.screen();
    const std::string t2 = session.ShownText();
    session.Type('2');
    ASSERT_TRUE(session.WaitForPrompts(3)) << session.screen();
    skipped.push_back(session.ShownText());
    session.Type('s');
    ASSERT_TRUE(session.WaitForPrompts(4)) << session.screen();
    const std::string t4 = session.ShownText();
    session.Type('1');
    ASSERT_TRUE(session.WaitForPrompts(5)) << session.screen();
    session.Type('u');  // undo: t4 comes back
    ASSERT_TRUE(session.WaitForPrompts(6)) << session.screen();
    EXPECT_EQ(session.ShownText(), t4);
    session.Type('2');
    ASSERT_TRUE(session.WaitForPrompts(7)) << session.screen();
    expected_lines = {"ANIMAL\t" + t1, "PLACE\t" + t2, "PLACE\t" + t4};
    EXPECT_EQ(Lines(Read(answers)), expected_lines);
    session.Kill();  // midway: no chance to clean up
  }
  EXPECT_EQ(Lines(Read(answers)), expected_lines) << "an answer was lost";
  {
    PtySession session(args);
    ASSERT_TRUE(session.WaitForPrompts(1)) << session.screen();
    const std::string t5 = session.ShownText();
    for (const std::string& line : expected_lines) {
      EXPECT_NE(line.substr(line.find('\t') + 1), t5) << "already labelled text shown again";
    }
    EXPECT_NE(t5, skipped[0]) << "a skipped text was shown again";
    session.Type('1');
    ASSERT_TRUE(session.WaitForPrompts(2)) << session.screen();
    session.Type('q');
    EXPECT_EQ(session.Wait(), 0) << session.screen();
    expected_lines.push_back("ANIMAL\t" + t5);
  }
  const std::vector<std::string> final_lines = Lines(Read(answers));
  EXPECT_EQ(final_lines, expected_lines);
  EXPECT_EQ(std::set<std::string>(final_lines.begin(), final_lines.end()).size(),
            final_lines.size());
}

// Every active.retrain_every answers the classifier is retrained on the labelled file and the
// session goes on with the new model.
// Issue 18, item 2: on a task.train without a final newline, the answer was glued onto the
// last line (the file was opened write-only, so its last byte could not be read back).
TEST_F(ActiveTest, LabelSessionAddsTheMissingNewlineBeforeItsFirstAnswer) {
  const fs::path& dir = *dir_;
  const fs::path answers = dir / "answers_no_newline.tsv";
  std::ofstream(answers) << "ANIMAL\tWhat does the cat like ?\nPLACE\tWhat does the city like ?";
  PtySession session({"label", "--config", (dir / "run.yaml").string(), "--set",
                      "task.train=" + answers.string(), "--set",
                      "active.pool=" + (dir / "pool.txt").string(), "--set",
                      "active.labels=ANIMAL,PLACE", "--set", "active.retrain_every=100"});
  ASSERT_TRUE(session.WaitForPrompts(1)) << session.screen();
  const std::string shown = session.ShownText();
  session.Type('2');
  ASSERT_TRUE(session.WaitForPrompts(2)) << session.screen();
  session.Type('q');
  EXPECT_EQ(session.Wait(), 0);
  const std::vector<std::string> expected = {"ANIMAL\tWhat does the cat like ?",
                                             "PLACE\tWhat does the city like ?",
                                             "PLACE\t" + shown};
  EXPECT_EQ(Lines(Read(answers)), expected);
}

TEST_F(ActiveTest, LabelSessionRetrainsEveryNLabels) {
  const fs::path& dir = *dir_;
  const fs::path answers = dir / "answers_retrain.tsv";
  fs::remove(answers);
  fs::remove_all(dir / "run" / "label");
  PtySession session({"label", "--config", (dir / "run.yaml").string(), "--set",
                      "task.train=" + answers.string(), "--set",
                      "active.pool=" + (dir / "pool.txt").string(), "--set",
                      "active.labels=ANIMAL,PLACE", "--set", "active.retrain_every=4"});
  const char keys[] = {'1', '2', '1', '2'};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(session.WaitForPrompts(i + 1)) << session.screen();
    session.Type(keys[i]);
  }
  ASSERT_TRUE(session.WaitForPrompts(5)) << session.screen();
  EXPECT_NE(session.screen().find("retrained on 4 labels"), std::string::npos)
      << session.screen();
  EXPECT_TRUE(fs::exists(dir / "run" / "label" / "round-001" / "model" / "classifier.pt"));
  EXPECT_NE(session.screen().rfind("4 labelled, 0 since retraining"), std::string::npos)
      << session.screen();
  session.Type('q');
  EXPECT_EQ(session.Wait(), 0);
  EXPECT_EQ(Lines(Read(answers)).size(), 4u);
}

}  // namespace

// Helpers shared by the end-to-end tests: temp folders, running the ulmfit binary, and a tiny
// three-stage setup (a general corpus, a two-class task and a config) that trains in seconds.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace ulmfit_test {
namespace fs = std::filesystem;

// A loopback TCP port that was free a moment ago (for a rendezvous between test processes).
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline fs::path TempDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("ulmfit_pipeline_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs the binary; stdin from `input` (if not empty), stdout to `out`, stderr to `err`, with
// `env` changed first (an empty value unsets the variable).
inline int RunCli(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
                  const fs::path& input = {},
                  const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [name, value] : env) {
      if (value.empty()) {
        ::unsetenv(name.c_str());
      } else {
        ::setenv(name.c_str(), value.c_str(), 1);
      }
    }
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

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string output;  // stdout and stderr together
};

// Runs the binary with `args`, stdout and stderr to `log`, optionally sending `kill_signal`
// once `kill_when` returns true (polled every 5 ms).
inline RunResult RunUlmfit(const std::vector<std::string>& args, const fs::path& log,
                           int kill_signal = 0, std::function<bool()> kill_when = nullptr) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    std::string binary = ULMFIT_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  bool sent = false;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (kill_signal != 0 && !sent && kill_when && kill_when()) {
      ::kill(pid, kill_signal);
      sent = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  RunResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  result.output = text.str();
  return result;
}

inline std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Two classes a model can learn from words alone: questions about animals vs. about places.
inline void WriteTask(const fs::path& path, int rows, unsigned seed) {
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

// A general corpus, a task and a config for all three stages of a tiny model in `dir`.
// `run` names the run directory; `backwards` reads every text right to left.
inline void WriteTinySetup(const fs::path& dir, const std::string& run, bool backwards) {
  if (!fs::exists(dir / "general.txt")) {
    std::ofstream corpus(dir / "general.txt");
    std::mt19937 rng(5);
    const std::vector<std::string> words = {"the", "cat", "dog", "city", "river", "likes",
                                            "what", "does", "about", "mountain", "paris"};
    for (int line = 0; line < 300; ++line) {
      for (int w = 0; w < 12; ++w) corpus << words[rng() % words.size()] << " ";
      corpus << ".\n";
    }
    WriteTask(dir / "train.tsv", 160, 1);
    WriteTask(dir / "test.tsv", 40, 2);
  }
  std::ofstream(dir / (run + ".yaml"))
      << "run:\n  output_dir: " << (dir / run).string() << "\n  device: cpu\n  threads: 1\n"
      << "text:\n  vocab_size: 60\n  cache_dir: " << (dir / "cache").string() << "\n"
      << "model:\n  emb_size: 16\n  hidden_size: 24\n  num_layers: 2\n"
      << "  backwards: " << (backwards ? "true" : "false") << "\n"
      << "pretrain:\n  data:\n    train: " << (dir / "general.txt").string()
      << "\n  epochs: 2\n  batch_size: 8\n  bptt: 12\n"
      << "task:\n  train: " << (dir / "train.tsv").string() << "\n  test: "
      << (dir / "test.tsv").string() << "\n"
      << "finetune:\n  epochs: 2\n  batch_size: 8\n  bptt: 12\n"
      << "classifier:\n  batch_size: 16\n  bptt: 8\n  max_len: 16\n  drop_mult: 0.1\n"
      << "  phase_epochs: \"1,1,1,10\"\n  phase_lrs: \"3e-2,3e-2,2e-2,2e-2\"\n";
}

// The lines of `text`, without their newlines.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The fields of one CSV line; the tests' files have no quoted commas.
inline std::vector<std::string> SplitCsv(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
  return fields;
}

// Every tensor of a weights file written by SaveModuleWeights, by name.
inline std::vector<std::pair<std::string, torch::Tensor>> LoadWeights(const fs::path& path) {
  torch::serialize::InputArchive archive;
  archive.load_from(path.string());
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const std::string& key : archive.keys()) {
    torch::Tensor t;
    archive.read(key, t);
    weights.emplace_back(key, t);
  }
  return weights;
}

// The train_loss / valid_loss fields of metrics.jsonl, as written.
inline std::vector<std::string> Losses(const fs::path& metrics) {
  std::istringstream lines(Read(metrics));
  std::vector<std::string> losses;
  std::string line;
  while (std::getline(lines, line)) {
    for (const std::string key : {"\"train_loss\": ", "\"valid_loss\": "}) {
      const auto pos = line.find(key);
      if (pos != std::string::npos) {
        losses.push_back(line.substr(pos, line.find(',', pos) - pos));
      }
    }
  }
  return losses;
}

inline double JsonNumber(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos ? -1 : std::stod(json.substr(at + key.size() + 4));
}

}  // namespace ulmfit_test

#include "util/blas_choice.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fmt/format.h"
#include "util/cpu_env.h"
#include "util/files.h"

namespace ulmfit {
namespace {

namespace fs = std::filesystem;

constexpr char kProbeVar[] = "ULMFIT_BLAS_PROBE";  // set in a probe child: its thread count
constexpr int kProbeTimeoutMs = 60000;
constexpr int kProbeRounds = 2;

bool HasWord(std::string_view line, std::string_view word) {
  size_t pos = 0;
  while ((pos = line.find(word, pos)) != std::string_view::npos) {
    const bool starts = pos == 0 || std::isspace(static_cast<unsigned char>(line[pos - 1]));
    const size_t end = pos + word.size();
    const bool ends = end == line.size() || std::isspace(static_cast<unsigned char>(line[end]));
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

// The value of the first "name : value" line of /proc/cpuinfo.
std::string CpuInfoField(const std::string& name) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (key != name) continue;
    size_t start = colon + 1;
    while (start < line.size() && line[start] == ' ') ++start;
    return line.substr(start);
  }
  return "";
}

// openblas_get_config() without the loaded kernel set's name, which it includes.
std::string OpenBlasBuild() {
  auto fn = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  const char* config = fn ? fn() : nullptr;
  std::istringstream words(config ? config : "");
  const std::string core = BlasCoreName();
  std::string word, out;
  while (words >> word) {
    if (!SameBlasCore(word, core)) out += (out.empty() ? "" : " ") + word;
  }
  return out;
}

// Runs this program as a probe child with OPENBLAS_CORETYPE=core; its answer, or nullopt when
// it failed, timed out or loaded another kernel set than asked for.
std::optional<BlasProbe> RunProbeChild(const std::string& core, int threads) {
  // The child's environment is built here: between fork and exec only async-signal-safe calls
  // are safe (OpenBLAS's threads already exist, and one could hold malloc's lock).
  std::vector<std::string> env = {std::string(kProbeVar) + "=" + std::to_string(threads),
                                  "OPENBLAS_CORETYPE=" + core,
                                  "ULMFIT_CPU_ENV=1"};  // no fixing, no re-exec, in the child
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) env.push_back("OMP_WAIT_POLICY=PASSIVE");
  for (char** var = environ; *var != nullptr; ++var) {
    const std::string_view entry(*var);
    const std::string_view name = entry.substr(0, entry.find('='));
    if (name != kProbeVar && name != "OPENBLAS_CORETYPE" && name != "ULMFIT_CPU_ENV") {
      env.emplace_back(entry);
    }
  }
  std::vector<char*> envp;
  for (std::string& var : env) envp.push_back(var.data());
  envp.push_back(nullptr);
  char name[] = "ulmfit-blas-probe";
  char* argv[] = {name, nullptr};
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

  int out[2];
  if (pipe(out) != 0) {
    if (devnull >= 0) close(devnull);
    return std::nullopt;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    close(out[0]);
    close(out[1]);
    if (devnull >= 0) close(devnull);
    return std::nullopt;
  }
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    execve("/proc/self/exe", argv, envp.data());
    _exit(127);
  }
  if (devnull >= 0) close(devnull);
  close(out[1]);
  std::string answer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kProbeTimeoutMs);
  bool timed_out = false;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd fd{out[0], POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[256];
    const ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  BlasProbe probe;
  std::istringstream in(answer);
  if (!(in >> probe.core >> probe.seconds) || probe.seconds <= 0) return std::nullopt;
  if (!SameBlasCore(probe.core, core)) return std::nullopt;  // this OpenBLAS lacks that set
  return probe;
}

// An exclusive flock on `path` for this object's life (no-op where locks are unsupported).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
    if (fd_ >= 0) flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) close(fd_);  // closing drops the lock
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// The cache's text; "" when it is missing or unreadable (the choice is then measured again).
std::string ReadAll(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? *std::move(text) : "";
}

}  // namespace

CpuIsa ParseCpuFlags(std::string_view flags) {
  CpuIsa isa;
  isa.avx2_fma = HasWord(flags, "avx2") && HasWord(flags, "fma");
  isa.avx512 = isa.avx2_fma && HasWord(flags, "avx512f") && HasWord(flags, "avx512cd") &&
               HasWord(flags, "avx512bw") && HasWord(flags, "avx512dq") &&
               HasWord(flags, "avx512vl");
  isa.avx512_bf16 = isa.avx512 && HasWord(flags, "avx512_bf16");
  isa.amx = isa.avx512_bf16 && HasWord(flags, "amx_tile") && HasWord(flags, "amx_bf16");
  return isa;
}

CpuIsa CurrentCpuIsa() { return ParseCpuFlags(CpuInfoField("flags")); }

std::vector<std::string> BlasCoreCandidates(const CpuIsa& isa) {
  std::vector<std::string> cores;
  if (!isa.avx2_fma) return cores;
  cores.push_back("Haswell");
  if (isa.avx512) cores.push_back("SkylakeX");
  if (isa.avx512_bf16) cores.push_back("Cooperlake");
  if (isa.amx) cores.push_back("SapphireRapids");  // newer OpenBLAS only; the probe tells
  return cores;
}

bool SameBlasCore(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string PickFastestCore(const std::vector<BlasProbe>& probes, std::string_view detected,
                            double margin) {
  const BlasProbe* best = nullptr;
  const BlasProbe* own = nullptr;
  for (const BlasProbe& p : probes) {
    if (p.seconds <= 0) continue;
    if (best == nullptr || p.seconds < best->seconds) best = &p;
    if (SameBlasCore(p.core, detected)) own = &p;
  }
  if (best == nullptr) return "";
  if (own != nullptr && own->seconds <= best->seconds * (1 + margin)) return own->core;
  return best->core;
}

std::optional<std::string> FindCachedCore(const std::string& cache_text, const std::string& key) {
  std::istringstream in(cache_text);
  std::string line;
  std::optional<std::string> found;
  while (std::getline(in, line)) {
    const size_t first = line.find('\t');
    if (first == std::string::npos || line.compare(0, first, key) != 0 || first != key.size()) {
      continue;
    }
    const size_t second = line.find('\t', first + 1);
    std::string core = line.substr(first + 1, second == std::string::npos ? std::string::npos
                                                                         : second - first - 1);
    if (!core.empty()) found = core;  // the last line for a key wins
  }
  return found;
}

std::string WithCachedCore(const std::string& cache_text, const std::string& key,
                           const std::string& core, const std::string& note) {
  std::istringstream in(cache_text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.empty() || (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
                         line[key.size()] == '\t')) {
      continue;
    }
    out += line + "\n";
  }
  return out + key + "\t" + core + "\t" + note + "\n";
}

std::string UsableCachedCore(const std::string& cache_text, const std::string& key,
                             const std::vector<std::string>& candidates) {
  const std::optional<std::string> core = FindCachedCore(cache_text, key);
  if (!core) return "";
  for (const std::string& c : candidates) {
    if (SameBlasCore(c, *core)) return c;
  }
  return "";
}

std::string BlasCacheKey() {
  std::string key = CpuInfoField("model name") + " (family " + CpuInfoField("cpu family") +
                    ", model " + CpuInfoField("model") + ", stepping " +
                    CpuInfoField("stepping") + "); " + OpenBlasBuild();
  std::replace(key.begin(), key.end(), '\t', ' ');
  return key;
}

std::string BlasCacheFile() { return (fs::path(UserCacheDir()) / "openblas_core.tsv").string(); }

std::string ChooseBlasCore(const std::string& detected, std::string* how) {
  if (detected.empty()) return "";  // not OpenBLAS
  const std::vector<std::string> candidates = BlasCoreCandidates(CurrentCpuIsa());
  if (candidates.size() < 2) return "";  // nothing to choose between

  const std::string file = BlasCacheFile();
  const std::string key = BlasCacheKey();
  auto cached_choice = [&] { return UsableCachedCore(ReadAll(file), key, candidates); };
  if (std::string core = cached_choice(); !core.empty()) {
    *how = "chosen by measurement, cached in " + file;
    return core;
  }
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  // Concurrent first runs (ctest -j, a launcher's ranks) wait here, and read the first's result.
  FileLock lock(file + ".lock");
  if (std::string core = cached_choice(); !core.empty()) {
    *how = "chosen by measurement, cached in " + file;
    return core;
  }
  const int threads = PhysicalCoreCount();
  // Rounds over the candidates, each keeping its best time: a burst of load from another
  // process then costs one sample, not one candidate.
  std::vector<BlasProbe> probes;
  for (int round = 0; round < kProbeRounds; ++round) {
    for (const std::string& core : candidates) {
      const std::optional<BlasProbe> probe = RunProbeChild(core, threads);
      if (!probe) continue;
      auto same = [&](const BlasProbe& p) { return p.core == probe->core; };
      auto it = std::find_if(probes.begin(), probes.end(), same);
      if (it == probes.end()) {
        probes.push_back(*probe);
      } else {
        it->seconds = std::min(it->seconds, probe->seconds);
      }
    }
  }
  const std::string chosen = PickFastestCore(probes, detected);
  if (chosen.empty()) return "";
  double best = 0;
  for (const BlasProbe& p : probes) best = std::max(best, 1 / p.seconds);
  std::string note = fmt::format("measured with {} threads, relative speed", threads);
  for (size_t i = 0; i < probes.size(); ++i) {
    note += fmt::format("{} {} {:.2f}", i ? "," : "", probes[i].core, 1 / probes[i].seconds / best);
  }
  *how = note;
  // The choice is only an optimisation: a cache that cannot be written costs a re-measurement.
  (void)WriteFileAtomic(file, WithCachedCore(ReadAll(file), key, chosen, note));
  return chosen;
}

double TimeStepProducts() {
  torch::NoGradGuard no_grad;
  // The x * W^T products of a training step of bench_lm's two models (batch 32, bptt 70, vocab
  // 30k), scaled down: per model, the LSTM's recurrent product at a quarter of the time steps and
  // its input projection, the decoder over a quarter of the tokens and 8,192 of the words, and
  // the decoder's two gradients (a transposed operand; a long inner dimension). About 24 GFLOP.
  struct Product {
    int64_t m, k, n;
    bool transposed_a;
    int repeats;
  };
  std::vector<Product> products;
  for (const auto& [emb, hidden] : {std::pair<int64_t, int64_t>{128, 512}, {400, 1152}}) {
    products.push_back({32, hidden, 4 * hidden, false, 18});
    products.push_back({560, emb, 4 * hidden, false, 1});
    products.push_back({560, emb, 8192, false, 1});
    products.push_back({8192, 560, emb, true, 1});
    products.push_back({560, 8192, emb, false, 1});
  }
  torch::manual_seed(0);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> operands;
  for (const Product& p : products) {
    torch::Tensor a = p.transposed_a ? torch::randn({p.k, p.m}) : torch::randn({p.m, p.k});
    operands.emplace_back(a, torch::randn({p.n, p.k}));
  }
  double best = 1e30;
  for (int pass = 0; pass < 4; ++pass) {  // the first warms caches and thread pools
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < products.size(); ++i) {
      const Product& p = products[i];
      const auto& [a, w] = operands[i];
      for (int r = 0; r < p.repeats; ++r) {
        torch::Tensor c = torch::mm(p.transposed_a ? a.t() : a, w.t());
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pass > 0) best = std::min(best, seconds);
  }
  return best;
}

void RunBlasProbeIfAsked() {
  const char* threads = std::getenv(kProbeVar);
  if (threads == nullptr) return;
  ConfigureThreads(std::max(1, std::atoi(threads)));
  const double seconds = TimeStepProducts();
  std::printf("%s %.6f\n", BlasCoreName().c_str(), seconds);
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace ulmfit

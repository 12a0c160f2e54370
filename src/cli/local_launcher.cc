#include "cli/local_launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "fmt/format.h"

extern char** environ;

namespace ulmfit::cli {
namespace {

// The workers' pids for the signal handler; 0 once a worker has exited (cleared before it is
// reaped, so the handler never signals a pid the system may have handed to a new process).
std::atomic<std::atomic<pid_t>*> g_worker_pids{nullptr};
std::atomic<int> g_worker_count{0};
std::atomic<int> g_forwarded_signal{0};

// Async-signal-safe: atomics and kill() only.
extern "C" void ForwardToWorkers(int signal) {
  const int saved_errno = errno;
  g_forwarded_signal.store(signal);
  std::atomic<pid_t>* pids = g_worker_pids.load();
  const int count = g_worker_count.load();
  for (int i = 0; pids != nullptr && i < count; ++i) {
    const pid_t pid = pids[i].load();
    if (pid > 0) ::kill(-pid, signal);  // its process group: the worker and any children
  }
  errno = saved_errno;
}

// A TCP port nothing listens on now: bind port 0 on the loopback and ask which one the kernel
// picked. Another process may take it before rank 0 binds it; unlikely enough for one machine.
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Variables the launcher sets for each worker, or that would make a worker read another
// launcher's setup (SLURM_PROCID: srun; TORCHELASTIC_*: torchrun's agent store).
bool LauncherVariable(const char* entry) {
  static const char* const kNames[] = {"RANK",
                                       "LOCAL_RANK",
                                       "WORLD_SIZE",
                                       "LOCAL_WORLD_SIZE",
                                       "MASTER_ADDR",
                                       "MASTER_PORT",
                                       "SLURM_PROCID",
                                       "TORCHELASTIC_USE_AGENT_STORE",
                                       "TORCHELASTIC_RESTART_COUNT"};
  for (const char* name : kNames) {
    const size_t n = std::strlen(name);
    if (std::strncmp(entry, name, n) == 0 && entry[n] == '=') return true;
  }
  return false;
}

// argv[0] for the workers: the binary's real path where we run ourselves, for ps and logs.
std::string ProgramName(const std::string& program) {
  if (program != "/proc/self/exe") return program;
  char path[PATH_MAX];
  const ssize_t n = ::readlink(program.c_str(), path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : program;
}

struct Worker {
  int rank = 0;
  pid_t pid = 0;
  std::vector<std::string> env;  // "NAME=value"
  bool live = false;
  bool killed_by_launcher = false;
};

// The exit status as a shell reports it: the code, or 128 + N when killed by signal N.
int StatusCode(const siginfo_t& info) {
  return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
}

std::string DescribeExit(const Worker& worker, const siginfo_t& info) {
  const std::string how = info.si_code == CLD_EXITED
                              ? fmt::format("exited with status {}", info.si_status)
                              : fmt::format("was killed by signal {}", info.si_status);
  return fmt::format("ulmfit: worker rank {} (pid {}) {}", worker.rank, worker.pid, how);
}

// Installs ForwardToWorkers for SIGINT and SIGTERM with both blocked, and puts everything back
// when it goes out of scope.
class SignalForwarding {
 public:
  SignalForwarding() {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &block, &old_mask_);
    struct sigaction action {};
    action.sa_handler = ForwardToWorkers;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalForwarding() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    g_worker_count.store(0);
    g_worker_pids.store(nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SignalForwarding(const SignalForwarding&) = delete;
  SignalForwarding& operator=(const SignalForwarding&) = delete;

  // Lets the signals through (they were blocked while the workers started).
  void Unblock() const {
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGINT);
    sigaddset(&unblock, SIGTERM);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  }
  // In a forked child, before exec: the caller's handlers and mask, so a signal that arrives
  // now is not forwarded from the child.
  void RestoreInChild() const {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }

 private:
  sigset_t old_mask_;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

}  // namespace

int LaunchLocalWorkers(int nproc, const std::vector<std::string>& worker_args,
                       const LaunchOptions& options) {
  if (nproc < 1) {
    std::fprintf(stderr, "ulmfit: cannot start %d workers\n", nproc);
    return kExitError;
  }
  const int port = FreeLoopbackPort();
  if (port <= 0) {
    std::fprintf(stderr, "ulmfit: --nproc: no free TCP port on 127.0.0.1: %s\n",
                 std::strerror(errno));
    return kExitError;
  }

  // Everything the children need is built before fork: between fork and exec a child of a
  // multi-threaded process may only make async-signal-safe calls (no malloc).
  std::vector<std::string> args{ProgramName(options.program)};
  args.insert(args.end(), worker_args.begin(), worker_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> base_env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!LauncherVariable(*e)) base_env.emplace_back(*e);
  }
  std::vector<Worker> workers(static_cast<size_t>(nproc));
  std::vector<std::vector<char*>> envps(workers.size());
  for (int i = 0; i < nproc; ++i) {
    Worker& w = workers[static_cast<size_t>(i)];
    w.rank = i;
    w.env = base_env;
    for (const std::string& v :
         {fmt::format("RANK={}", i), fmt::format("LOCAL_RANK={}", i),
          fmt::format("WORLD_SIZE={}", nproc), fmt::format("LOCAL_WORLD_SIZE={}", nproc),
          std::string("MASTER_ADDR=127.0.0.1"), fmt::format("MASTER_PORT={}", port)}) {
      w.env.push_back(v);
    }
    for (std::string& v : w.env) envps[static_cast<size_t>(i)].push_back(v.data());
    envps[static_cast<size_t>(i)].push_back(nullptr);
  }
  const std::string exec_error = fmt::format("ulmfit: cannot execute {}\n", options.program);

  std::fprintf(stderr, "ulmfit: starting %d workers (MASTER_ADDR=127.0.0.1 MASTER_PORT=%d)\n",
               nproc, port);
  std::fflush(stdout);
  std::fflush(stderr);

  const auto pids = std::make_unique<std::atomic<pid_t>[]>(workers.size());
  for (int i = 0; i < nproc; ++i) pids[static_cast<size_t>(i)].store(0);
  g_forwarded_signal.store(0);
  SignalForwarding forwarding;  // SIGINT/SIGTERM blocked until all workers have started
  g_worker_pids.store(pids.get());
  g_worker_count.store(nproc);

  const pid_t launcher = ::getpid();
  for (int i = 0; i < nproc; ++i) {
    Worker& w = workers[static_cast<size_t>(i)];
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Its own process group: a terminal's Ctrl-C reaches the launcher only, which forwards
      // it once (a worker's second SIGINT would skip its checkpoint).
      ::setpgid(0, 0);
      // If the launcher dies (SIGKILL, a closed terminal), the worker saves and stops.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(128 + SIGTERM);
      forwarding.RestoreInChild();
      ::execve(options.program.c_str(), argv.data(), envps[static_cast<size_t>(i)].data());
      const ssize_t ignored = ::write(STDERR_FILENO, exec_error.data(), exec_error.size());
      (void)ignored;
      ::_exit(127);
    }
    if (pid < 0) {
      const int fork_errno = errno;
      for (int j = 0; j < i; ++j) {
        ::kill(-workers[static_cast<size_t>(j)].pid, SIGKILL);
        ::waitpid(workers[static_cast<size_t>(j)].pid, nullptr, 0);
      }
      std::fprintf(stderr, "ulmfit: cannot start worker rank %d: fork: %s\n", i,
                   std::strerror(fork_errno));
      return kExitError;
    }
    ::setpgid(pid, pid);  // also here, so the group exists before any signal is forwarded
    w.pid = pid;
    w.live = true;
    pids[static_cast<size_t>(i)].store(pid);
  }
  forwarding.Unblock();

  int live = nproc;
  int first_failure = 0;
  int failed_rank = -1;
  std::optional<std::chrono::steady_clock::time_point> deadline;  // set by the first failure
  bool said_forwarded = false;
  // Polls rather than blocks in wait(): a deadline needs a timeout, and waiting on these pids
  // only leaves the caller's other children (tests) alone.
  while (live > 0) {
    bool reaped = false;
    for (int i = 0; i < nproc; ++i) {
      Worker& w = workers[static_cast<size_t>(i)];
      if (!w.live) continue;
      siginfo_t info{};
      // WNOWAIT: look without reaping, so the pid stays ours until the handler forgets it.
      if (::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid == 0) {
        continue;
      }
      pids[static_cast<size_t>(i)].store(0);
      ::waitpid(w.pid, nullptr, 0);
      w.live = false;
      --live;
      reaped = true;
      const int code = StatusCode(info);
      if (code == 0) continue;
      const bool our_kill =
          w.killed_by_launcher && info.si_code != CLD_EXITED && info.si_status == SIGKILL;
      if (!our_kill) std::fprintf(stderr, "%s\n", DescribeExit(w, info).c_str());
      if (first_failure == 0) {
        first_failure = code;
        failed_rank = w.rank;
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(options.grace_seconds));
      }
    }
    if (const int signal = g_forwarded_signal.load(); signal != 0 && !said_forwarded) {
      std::fprintf(stderr, "ulmfit: passed signal %d on to the workers\n", signal);
      said_forwarded = true;
    }
    if (live > 0 && deadline && std::chrono::steady_clock::now() >= *deadline) {
      for (Worker& w : workers) {
        if (!w.live || w.killed_by_launcher) continue;
        std::fprintf(stderr,
                     "ulmfit: worker rank %d (pid %d) still running %gs after rank %d failed; "
                     "killing it (SIGKILL)\n",
                     w.rank, static_cast<int>(w.pid), options.grace_seconds, failed_rank);
        ::kill(-w.pid, SIGKILL);
        w.killed_by_launcher = true;
      }
    }
    if (live > 0 && !reaped) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return first_failure;
}

int LaunchLocalWorkers(int nproc, const std::vector<std::string>& worker_args,
                       double grace_seconds) {
  LaunchOptions options;
  options.grace_seconds = grace_seconds;
  return LaunchLocalWorkers(nproc, worker_args, options);
}

}  // namespace ulmfit::cli

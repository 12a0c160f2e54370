// The in-process fuzz suite (issue 18): seeded mutations of a config, a TSV, a CSV, a text
// corpus, a vocab pickle, a torch.save file and a checkpoint, each run through the real reader
// (fuzz_readers.h). No input may let an exception escape, take over kMaxSecondsPerInput, or
// get an error that is not one line naming its file; accepted inputs must keep the readers'
// documented promises. ULMFIT_FUZZ_ITERATIONS=N runs N inputs per reader (longer local runs),
// ULMFIT_FUZZ_SEED=S another set of inputs. A failing input is kept under
// $TMPDIR/ulmfit_fuzz_failures/ for replay. docs/fuzzing.md has the numbers.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "fuzz/fuzz_readers.h"
#include "interop/zip.h"
#include "util/random.h"

namespace ulmfit_fuzz {
namespace {

// Inputs per reader: 21,000 in all, about 5 s of CPU in Release (the libtorch archive readers
// cost most: 1 ms and 0.4 ms an input), so that the suite stays well inside CI's minute on a
// busy 2-core machine too. docs/fuzzing.md.
constexpr int kConfigInputs = 3000;
constexpr int kTsvInputs = 2000;
constexpr int kCsvInputs = 2000;
constexpr int kCorpusInputs = 2000;
constexpr int kVocabInputs = 5000;
constexpr int kTorchFileInputs = 3000;
constexpr int kCheckpointInputs = 2000;
constexpr int kWeightsInputs = 2000;

constexpr double kMaxSecondsPerInput = 2.0;
// A call still running after this long is a hang: InputGuard saves the input and aborts,
// since the test could not go on anyway.
constexpr double kWatchdogSeconds = 30.0;
constexpr int kReportedFailures = 5;  // per reader; the rest are counted

int Iterations(int count) {
  const char* env = std::getenv("ULMFIT_FUZZ_ITERATIONS");
  return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : count;
}

// FNV-1a: a reader's name as a seed, the same with every standard library (std::hash is not).
uint64_t NameHash(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

uint64_t BaseSeed() {
  const char* env = std::getenv("ULMFIT_FUZZ_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 0;
}

fs::path ScratchDir(const std::string& reader) {
  const fs::path dir = fs::temp_directory_path() /
                       ("ulmfit_fuzz_" + reader + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Fixture(const std::string& name) {
  return ReadBytes(std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/" + name);
}

// ---------------------------------------------------------------------------------------------
// The mutator.

// Where each code point starts, and the end. Approximate on invalid UTF-8, which is fine: the
// text edits only promise to keep valid input valid.
std::vector<size_t> Boundaries(const std::string& s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) at.push_back(i);
  }
  at.push_back(s.size());
  return at;
}

// Seeded edits of an input: byte-level ones, and text ones that keep valid UTF-8 valid (whole
// code points, tokens that matter to YAML, TSV and CSV, odd numbers). Each input has a
// generator of its own, so input i of a reader does not depend on what ran before it.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : state_(seed) {}

  uint64_t Next() { return ulmfit::NextSplitMix64(&state_); }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
  bool OneIn(size_t n) { return Below(n) == 0; }
  // In [1, max], short lengths far more likely than long ones.
  size_t Length(size_t max) { return max == 0 ? 0 : 1 + Below(1 + Below(max)); }
  template <typename T, size_t N>
  const T& Pick(const T (&items)[N]) {
    return items[Below(N)];
  }

  // A few edits (sometimes many); with `text`, mostly UTF-8-preserving ones. Cut at max_size.
  std::string Mutate(std::string s, bool text, size_t max_size) {
    const bool text_only = text && OneIn(2);
    const size_t rounds = OneIn(8) ? 4 + Below(12) : 1 + Below(3);
    for (size_t r = 0; r < rounds; ++r) {
      if (text_only || (text && !OneIn(3))) {
        EditText(&s);
      } else {
        EditBytes(&s);
      }
    }
    if (s.size() > max_size) s.resize(max_size);
    return s;
  }

  // Text edits only: valid UTF-8 stays valid, also when cut at max_size.
  std::string MutateText(std::string s, size_t max_size) {
    const size_t rounds = 1 + Below(4);
    for (size_t r = 0; r < rounds; ++r) EditText(&s);
    if (s.size() > max_size) {
      const std::vector<size_t> at = Boundaries(s.substr(0, max_size + 1));
      s.resize(at[at.size() - 2]);
    }
    return s;
  }

  void EditBytes(std::string* s);
  void EditText(std::string* s);

 private:
  uint64_t state_;
};

void Mutator::EditBytes(std::string* s) {
  static const std::string_view kSpecial[] = {
      std::string_view("\0", 1), "\xFF", "\x80", "\xC3",  // NUL, never UTF-8, a lone tail byte
      "\xC0\xAF", "\xE0\x80\xAF", "\xF0\x80\x80\xAF",       // overlong '/'
      "\xED\xA0\x80", "\xF4\x90\x80\x80",                    // a surrogate, above U+10FFFF
      "\xEF\xBB\xBF", "\r", "\n", "\x1F\x8B", "PK\x03\x04", "\x80\x02"};
  static const uint64_t kInts[] = {0,          1,          0x7F,       0x80,
                                   0xFF,       0x7FFF,     0xFFFF,     0x7FFFFFFF,
                                   0x80000000, 0xFFFFFFFF, uint64_t{1} << 62,
                                   ~uint64_t{0}, uint64_t{1} << 63, 0x7FFFFFFFFFFFFFFF};
  const size_t n = s->size();
  switch (Below(10)) {
    case 0:  // flip a bit
      if (n > 0) (*s)[Below(n)] ^= static_cast<char>(1u << Below(8));
      break;
    case 1:  // set a byte
      if (n > 0) (*s)[Below(n)] = static_cast<char>(Next());
      break;
    case 2: {  // insert random bytes
      std::string bytes(Length(8), '\0');
      for (char& c : bytes) c = static_cast<char>(Next());
      s->insert(Below(n + 1), bytes);
      break;
    }
    case 3:  // insert a byte sequence readers treat specially
      s->insert(Below(n + 1), std::string(Pick(kSpecial)));
      break;
    case 4:  // delete a range
      if (n > 0) {
        const size_t p = Below(n);
        s->erase(p, Length(std::min<size_t>(n - p, 64)));
      }
      break;
    case 5:  // duplicate a range, sometimes many times (deep nesting, long lines)
      if (n > 0) {
        const size_t p = Below(n);
        const std::string range = s->substr(p, Length(std::min<size_t>(n - p, 32)));
        const size_t times = OneIn(4) ? Length(200) : 1;
        std::string copies;
        for (size_t i = 0; i < times; ++i) copies += range;
        s->insert(Below(n + 1), copies);
      }
      break;
    case 6:  // overwrite a range with random bytes
      if (n > 0) {
        const size_t p = Below(n);
        const size_t len = Length(std::min<size_t>(n - p, 16));
        for (size_t i = p; i < p + len; ++i) (*s)[i] = static_cast<char>(Next());
      }
      break;
    case 7:  // truncate
      s->resize(Below(n + 1));
      break;
    case 8: {  // an interesting little-endian integer over 1, 2, 4 or 8 bytes (lengths, counts)
      const size_t width = size_t{1} << Below(4);
      if (n >= width) {
        const size_t p = Below(n - width + 1);
        const uint64_t v = Pick(kInts);
        for (size_t i = 0; i < width; ++i) (*s)[p + i] = static_cast<char>(v >> (8 * i));
      }
      break;
    }
    case 9:  // copy a range over another place
      if (n > 1) {
        const size_t from = Below(n), to = Below(n);
        const size_t len = std::min(Length(std::min<size_t>(n - from, 32)), n - to);
        s->replace(to, len, s->substr(from, len));
      }
      break;
  }
}

void Mutator::EditText(std::string* s) {
  static const std::string_view kTokens[] = {
      ":", ": ", "\t", "-", "- ", "[", "]", "{", "}", "\"", "'", ",", "\n", "\r\n", "  ",
      "    ", "#", "&a ", "*a", "!!str ", "!!binary ", "|", ">", "? ", "---\n", "...\n",
      "%YAML 1.2\n", "<<: ", "~", "null", "true", "yes", "off", "xxfld", "\\", "\"\"", ",\"",
      "\"\n", " \"", "\t\t", "=", "label", "text", "title", "train", "model"};
  static const std::string_view kNumbers[] = {
      "-1", "0", "-0", "1e309", "-1e309", "nan", "NaN", ".nan", "inf", ".inf", "-.inf",
      "1e-400", "4.9e-324", "99999999999999999999", "9223372036854775807",
      "9223372036854775808", "-9223372036854775809", "2147483648", "0x10", "0o17", "1_000",
      "+1", "1.", ".5", "00", "1e3"};
  static const std::string_view kCodePoints[] = {
      "\xC3\xA9", "\xE6\x97\xA5", "\xEF\xBB\xBF", "\xE2\x80\xA8", "\xC2\x85", "\xE2\x80\x8B",
      "\xF4\x8F\xBF\xBF", "\xF0\x9F\x98\x80", "\xC2\xA0", "\xEF\xBF\xBD", std::string_view("\0", 1),
      "\x7F", "\x0B", "\x0C"};
  const std::vector<size_t> at = Boundaries(*s);
  const size_t cps = at.size() - 1;  // code points
  // A run of up to `max` code points [i, i + len).
  auto run = [&](size_t max, size_t* i, size_t* len) {
    *i = Below(cps);
    *len = Length(std::min(cps - *i, max));
  };
  switch (Below(9)) {
    case 0:  // insert a token
      s->insert(at[Below(at.size())], std::string(Pick(kTokens)));
      break;
    case 1:  // replace code points with a token
      if (cps > 0) {
        size_t i, len;
        run(4, &i, &len);
        s->replace(at[i], at[i + len] - at[i], std::string(Pick(kTokens)));
      }
      break;
    case 2:  // delete code points
      if (cps > 0) {
        size_t i, len;
        run(8, &i, &len);
        s->erase(at[i], at[i + len] - at[i]);
      }
      break;
    case 3:  // insert an unusual code point
      s->insert(at[Below(at.size())], std::string(Pick(kCodePoints)));
      break;
    case 4: {  // delete, duplicate or swap whole lines
      std::vector<std::string> lines;
      size_t start = 0;
      for (size_t nl; (nl = s->find('\n', start)) != std::string::npos; start = nl + 1) {
        lines.push_back(s->substr(start, nl + 1 - start));
      }
      lines.push_back(s->substr(start));
      const size_t a = Below(lines.size()), b = Below(lines.size());
      switch (Below(3)) {
        case 0: lines.erase(lines.begin() + a); break;
        case 1: lines.insert(lines.begin() + b, lines[a]); break;
        case 2: std::swap(lines[a], lines[b]); break;
      }
      s->clear();
      for (const std::string& line : lines) *s += line;
      break;
    }
    case 5: {  // replace a number (a run of digits) with an odd one
      std::vector<std::pair<size_t, size_t>> numbers;
      for (size_t i = 0; i < s->size();) {
        if (!absl::ascii_isdigit(static_cast<unsigned char>((*s)[i]))) {
          ++i;
          continue;
        }
        size_t j = i;
        while (j < s->size() && absl::ascii_isdigit(static_cast<unsigned char>((*s)[j]))) ++j;
        numbers.emplace_back(i, j - i);
        i = j;
      }
      const std::string number(Pick(kNumbers));
      if (numbers.empty()) {
        s->insert(at[Below(at.size())], number);
      } else {
        const auto& [p, len] = numbers[Below(numbers.size())];
        s->replace(p, len, number);
      }
      break;
    }
    case 6: {  // change a line's indentation
      std::vector<size_t> starts = {0};
      for (size_t i = 0; i < s->size(); ++i) {
        if ((*s)[i] == '\n') starts.push_back(i + 1);
      }
      const size_t p = starts[Below(starts.size())];
      size_t spaces = 0;
      while (p + spaces < s->size() && (*s)[p + spaces] == ' ') ++spaces;
      static const std::string_view kIndents[] = {"", " ", "  ", "   ", "    ", "\t", " \t"};
      s->replace(p, OneIn(2) ? spaces : 0, std::string(Pick(kIndents)));
      break;
    }
    case 7: {  // toggle the case of an ASCII letter (True, NULL, Label)
      std::vector<size_t> letters;
      for (size_t i = 0; i < s->size(); ++i) {
        if (absl::ascii_isalpha(static_cast<unsigned char>((*s)[i]))) letters.push_back(i);
      }
      if (!letters.empty()) (*s)[letters[Below(letters.size())]] ^= 0x20;
      break;
    }
    case 8:  // duplicate a run of code points, sometimes many times ("[[[[", "- - - -")
      if (cps > 0) {
        size_t i, len;
        run(16, &i, &len);
        const std::string range = s->substr(at[i], at[i + len] - at[i]);
        const size_t times = OneIn(4) ? Length(300) : 1;
        std::string copies;
        for (size_t k = 0; k < times; ++k) copies += range;
        s->insert(at[Below(at.size())], copies);
      }
      break;
  }
}

// Raw deflate data (a zip entry's) into `out`.
bool Inflate(std::string_view deflated, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(deflated.data()));
  z.avail_in = static_cast<uInt>(deflated.size());
  char buffer[1 << 14];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    out->append(buffer, sizeof buffer - z.avail_out);
  }
  inflateEnd(&z);
  return rc == Z_STREAM_END;
}

// A zip archive's entries in order, deflated ones inflated (libtorch's code/ files).
struct ZipEntries {
  std::vector<std::string> names, data;

  bool Read(const std::string& archive) {
    absl::StatusOr<std::vector<ulmfit::ZipEntry>> entries =
        ulmfit::ReadZipDirectory(archive, "archive", /*allow_compressed=*/true);
    if (!entries.ok() || entries->empty()) return false;
    for (const ulmfit::ZipEntry& e : *entries) {
      names.push_back(e.name);
      if (e.compressed) {
        std::string inflated;
        if (!Inflate(std::string_view(archive).substr(e.data_offset, e.size), &inflated)) {
          return false;
        }
        data.push_back(std::move(inflated));
        continue;
      }
      absl::StatusOr<std::string_view> bytes = ulmfit::ZipEntryData(archive, e, "archive");
      if (!bytes.ok()) return false;
      data.emplace_back(*bytes);
    }
    return true;
  }
  // The entry whose name ends in `suffix`, or null.
  std::string* Find(const std::string& suffix) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (absl::EndsWith(names[i], suffix)) return &data[i];
    }
    return nullptr;
  }
  // A stored archive with fresh CRCs, or "" when it cannot be written.
  std::string Write() const {
    std::vector<ulmfit::ZipRecord> records;
    for (size_t i = 0; i < names.size(); ++i) records.push_back({names[i], data[i]});
    absl::StatusOr<std::string> zip = ulmfit::WriteZip(records);
    return zip.ok() ? *zip : "";
  }
};

// An edit inside a zip archive (torch.save and libtorch archives), written back with fresh
// CRCs so that it reaches the entry's reader instead of the CRC check: one entry's bytes
// mutated (a pickle more often than tensor data), an entry dropped, renamed, or given another
// entry's bytes. False when `archive` is not a zip this reader understands.
bool MutateZipEntry(std::string* archive, Mutator& m) {
  ZipEntries zip;
  if (!zip.Read(*archive)) return false;
  std::vector<std::string>& names = zip.names;
  std::vector<std::string>& data = zip.data;
  // Never a code/ file of a libtorch archive: libtorch 1.13's TorchScript importer crashes on
  // some damaged ones (parseClassConstant, reading memory it does not own). The readers refuse
  // a damaged one by its CRC, which this edit rewrites; a crafted archive is out of their reach
  // (docs/fuzzing.md). Byte-level edits of the whole archive still damage code/ files.
  std::vector<size_t> editable;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].find("/code/") == std::string::npos) editable.push_back(i);
  }
  if (editable.empty()) return false;
  size_t pick = editable[m.Below(editable.size())];
  if (m.OneIn(2)) {  // prefer a pickle
    for (size_t i : editable) {
      if (absl::EndsWith(names[i], ".pkl") && m.OneIn(2)) pick = i;
    }
  }
  switch (m.Below(8)) {
    case 0:
      names.erase(names.begin() + pick);
      data.erase(data.begin() + pick);
      break;
    case 1:
      names[pick] = m.MutateText(names[pick], 200);
      break;
    case 2:
      data[pick] = data[editable[m.Below(editable.size())]];
      break;
    default:
      data[pick] = m.Mutate(data[pick], /*text=*/false, data[pick].size() + 4096);
      break;
  }
  std::string written = zip.Write();
  if (written.empty()) return false;
  *archive = std::move(written);
  return true;
}

// A binary input: a zip-aware edit (when it is a zip) or byte-level ones.
std::string MutateBinary(const std::string& seed, Mutator& m) {
  std::string s = seed;
  if (m.OneIn(2) && MutateZipEntry(&s, m)) {
    if (m.OneIn(4)) s = m.Mutate(std::move(s), /*text=*/false, s.size() + 4096);
    return s;
  }
  return m.Mutate(seed, /*text=*/false, seed.size() + 4096);
}

// ---------------------------------------------------------------------------------------------
// The harness.

fs::path FailureDir() { return fs::temp_directory_path() / "ulmfit_fuzz_failures"; }

// Keeps the input being read so that nothing is lost when it never returns: a call still
// running after kWatchdogSeconds is a hang (the input is saved and the process aborts, since
// the suite could not go on anyway), and a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT)
// saves it from a signal handler before the default action ends the process.
class InputGuard {
 public:
  InputGuard() : thread_([this] { Watch(); }) {
    fs::create_directories(FailureDir());
    active_ = this;
    struct sigaction action {};
    action.sa_handler = OnFatalSignal;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &action, &previous_[i]);
  }
  ~InputGuard() {
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &previous_[i], nullptr);
    active_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void Start(const std::string& label, const std::string& input) {
    std::lock_guard<std::mutex> lock(mutex_);
    label_ = label;
    input_ = input;
    std::snprintf(crash_path_, sizeof crash_path_, "%s/%s-crash.bin", FailureDir().c_str(),
                  label.c_str());
    started_ = std::chrono::steady_clock::now();
    busy_ = true;
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    busy_ = false;
  }

 private:
  static constexpr std::array<int, 5> kSignals = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

  void Watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(200));
      if (busy_ && std::chrono::duration<double>(std::chrono::steady_clock::now() - started_)
                           .count() > kWatchdogSeconds) {
        const fs::path path = FailureDir() / (label_ + "-hang.bin");
        WriteBytes(path, input_);
        std::fprintf(stderr, "fuzz: %s still running after %.0f s: a hang; input saved to %s\n",
                     label_.c_str(), kWatchdogSeconds, path.c_str());
        std::fflush(stderr);
        std::abort();
      }
    }
  }

  // Async-signal-safe calls only; the crashing thread is the one reading input_, so it is
  // not changing.
  static void OnFatalSignal(int signal) {
    const InputGuard* guard = active_;
    if (guard != nullptr && guard->busy_) {
      const int fd = ::open(guard->crash_path_, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        size_t done = 0;
        while (done < guard->input_.size()) {
          const ssize_t n = ::write(fd, guard->input_.data() + done, guard->input_.size() - done);
          if (n <= 0) break;
          done += static_cast<size_t>(n);
        }
        ::close(fd);
      }
      const char text[] = "\nfuzz: a fatal signal while reading an input; it is saved to ";
      (void)!::write(2, text, sizeof text - 1);
      (void)!::write(2, guard->crash_path_, std::strlen(guard->crash_path_));
      (void)!::write(2, "\n", 1);
    }
    ::raise(signal);  // SA_RESETHAND: the default action now
  }

  static inline InputGuard* active_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false, busy_ = false;
  std::string label_, input_;
  char crash_path_[1024] = {};
  std::chrono::steady_clock::time_point started_;
  std::array<struct sigaction, kSignals.size()> previous_{};
  std::thread thread_;
};

// One reader's inputs: each call timed, escaping exceptions caught, its Verdict checked
// (fuzz_readers.h Problem); failing inputs saved for replay; a summary line at the end.
class Campaign {
 public:
  Campaign(std::string reader, int default_count)
      : reader_(std::move(reader)),
        count_(Iterations(default_count)),
        seed_(ulmfit::SplitMix64(BaseSeed() ^ NameHash(reader_))) {}

  ~Campaign() {
    const int accepted = inputs_ - rejected_ - failed_;
    std::cout << "[fuzz] " << reader_ << ": " << inputs_ << " inputs, " << accepted
              << " accepted, " << rejected_ << " rejected, " << failed_ << " failed; slowest "
              << slowest_ * 1e3 << " ms, " << total_ << " s in all" << std::endl;
    ::testing::Test::RecordProperty(reader_ + "_inputs", inputs_);
    ::testing::Test::RecordProperty(reader_ + "_accepted", accepted);
    ::testing::Test::RecordProperty(reader_ + "_rejected", rejected_);
    EXPECT_EQ(failed_, 0) << reader_ << ": " << failed_ << " failing inputs in "
                          << FailureDir().string();
  }

  int count() const { return count_; }
  Mutator MutatorFor(int index) const { return Mutator(ulmfit::SplitMix64(seed_ + index)); }

  // Runs `read` on input `index`. `input` is what a failure saves: the input as the libFuzzer
  // target of the same name reads it (RunTarget); `how` says what else the call was given.
  void Run(int index, const std::string& input, const std::string& how,
           const std::function<Verdict()>& read) {
    const std::string label = absl::StrCat(reader_, "-", BaseSeed(), "-", index);
    std::string problem;
    Verdict verdict;
    guard_.Start(label, input);
    const auto start = std::chrono::steady_clock::now();
    try {
      verdict = read();
      problem = Problem(verdict, input);
    } catch (const c10::Error& e) {
      problem = "c10::Error escaped: " + Shown(e.what_without_backtrace());
    } catch (const std::exception& e) {
      problem = "an exception escaped: " + Shown(e.what());
    } catch (...) {
      problem = "an unknown exception escaped";
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    guard_.Stop();
    ++inputs_;
    total_ += seconds;
    slowest_ = std::max(slowest_, seconds);
    if (problem.empty() && seconds > kMaxSecondsPerInput) {
      problem = absl::StrCat("took ", seconds, " s (at most ", kMaxSecondsPerInput, ")");
    }
    if (problem.empty()) {
      if (!verdict.status.ok()) ++rejected_;
      return;
    }
    if (++failed_ > kReportedFailures) return;
    fs::create_directories(FailureDir());
    const fs::path saved = FailureDir() / (label + ".bin");
    WriteBytes(saved, input);
    ADD_FAILURE() << reader_ << " input " << index << " (ULMFIT_FUZZ_SEED=" << BaseSeed()
                  << ", " << how << "): " << problem << "\n  input saved to " << saved.string()
                  << "; replay: ULMFIT_FUZZ_REPLAY=" << saved.string()
                  << " build/ulmfit_tests --gtest_filter=FuzzTest.Replay";
  }

 private:
  std::string reader_;
  int count_;
  uint64_t seed_;
  int inputs_ = 0, rejected_ = 0, failed_ = 0;
  double slowest_ = 0, total_ = 0;
  InputGuard guard_;
};

// LoadCheckpoint sets the global CPU generator from the file: later tests get theirs back.
class CpuGeneratorGuard {
 public:
  CpuGeneratorGuard() : state_(at::globalContext().defaultGenerator(torch::kCPU).get_state()) {}
  ~CpuGeneratorGuard() {
    at::Generator generator = at::globalContext().defaultGenerator(torch::kCPU);
    generator.set_state(state_);
  }

 private:
  torch::Tensor state_;
};

// ---------------------------------------------------------------------------------------------
// The suite.

TEST(FuzzTest, MutatorIsSeededAndTextEditsKeepUtf8) {
  const std::string seed = CorpusSeeds()[0];
  std::set<std::string> distinct;
  for (uint64_t s = 0; s < 300; ++s) {
    Mutator a(s), b(s);
    const std::string text = a.MutateText(seed, 512);
    EXPECT_EQ(text, b.MutateText(seed, 512)) << "seed " << s;
    EXPECT_EQ(ulmfit::FindInvalidUtf8(text), -1) << "seed " << s << ": " << Shown(text);
    EXPECT_LE(text.size(), 512u);
    distinct.insert(text);
    distinct.insert(a.Mutate(seed, /*text=*/false, 4096));
  }
  EXPECT_GT(distinct.size(), 500u);  // of 600: the edits vary
}

// The seeds are valid inputs: the mutations start from inputs each reader accepts.
TEST(FuzzTest, SeedsAreAccepted) {
  CpuGeneratorGuard generator;
  TargetContext ctx{ScratchDir("seeds"), nullptr};
  for (const std::string& seed : ConfigSeeds()) {
    const Verdict v = ReadConfig(seed, OverrideSeeds(), false, ctx.scratch);
    EXPECT_TRUE(v.status.ok() && v.broken.empty()) << v.status << v.broken << "\n" << seed;
  }
  for (const std::string target : {"tsv", "csv"}) {
    for (const std::string& seed : target == "csv" ? CsvSeeds() : TsvSeeds()) {
      for (const FileKind kind : {FileKind::kPlain, FileKind::kGzipped}) {
        const Verdict v = RunTarget(
            target, std::string(1, static_cast<char>(LabeledSelector(0, kind))) + seed, ctx);
        EXPECT_TRUE(v.status.ok() && v.broken.empty()) << v.status << v.broken << "\n" << seed;
      }
    }
  }
  for (const std::string& seed : CorpusSeeds()) {
    const Verdict v = RunTarget("corpus", std::string(1, '\0') + seed, ctx);
    EXPECT_TRUE(v.status.ok() && v.broken.empty()) << v.status << v.broken << "\n" << seed;
  }
  for (const char* name : kVocabFixtures) {
    const Verdict v = RunTarget("vocab", Fixture(name), ctx);
    EXPECT_TRUE(v.status.ok() && v.broken.empty()) << name << ": " << v.status << v.broken;
  }
  for (const char* name : kTorchFixtures) {
    const Verdict v = RunTarget("torch_file", Fixture(name), ctx);
    EXPECT_TRUE(v.status.ok() && v.broken.empty()) << name << ": " << v.status << v.broken;
  }
  ctx.checkpoint = MakeTinyCheckpoint(ctx.scratch);
  ASSERT_NE(ctx.checkpoint, nullptr);
  for (uint8_t file = 0; file < 4; ++file) {
    const Verdict v = RunTarget(
        "checkpoint",
        std::string(1, static_cast<char>(file)) + ctx.checkpoint->files[kCheckpointFiles[file]],
        ctx);
    EXPECT_TRUE(v.status.ok() && v.broken.empty()) << v.status << v.broken;
  }
  const Verdict v = RunTarget("weights", ctx.checkpoint->files["model.pt"], ctx);
  EXPECT_TRUE(v.status.ok() && v.broken.empty()) << v.status << v.broken;
  fs::remove_all(ctx.scratch);
}

TEST(FuzzTest, ConfigYaml) {
  TargetContext ctx{ScratchDir("config"), nullptr};
  Campaign campaign("config", kConfigInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const std::string yaml = m.Mutate(ConfigSeeds()[i % ConfigSeeds().size()], true, 8192);
    std::vector<std::string> overrides;
    if (m.OneIn(4)) {
      overrides.push_back(m.Mutate(OverrideSeeds()[m.Below(OverrideSeeds().size())], true, 256));
    }
    const bool via_file = m.OneIn(8);
    const std::string how = absl::StrCat(via_file ? "LoadConfig" : "LoadConfigFromString",
                                         overrides.empty() ? "" : ", --set " + Shown(overrides[0]));
    campaign.Run(i, yaml, how, [&] { return ReadConfig(yaml, overrides, via_file, ctx.scratch); });
  }
  fs::remove_all(ctx.scratch);
}

const char* KindName(FileKind kind) {
  return kind == FileKind::kPlain ? "plain" : kind == FileKind::kGzipped ? "gzipped" : "raw .gz";
}

// Mostly plain files; some gzipped, some with the input's bytes as the .gz file itself.
FileKind PickFileKind(Mutator& m) {
  const size_t r = m.Below(8);
  return r == 0 ? FileKind::kGzipped : r == 1 ? FileKind::kRawGz : FileKind::kPlain;
}

// The input as a target with a selector byte reads it.
std::string WithSelector(uint8_t selector, const std::string& rest) {
  return std::string(1, static_cast<char>(selector)) + rest;
}

void FuzzLabeledData(const std::string& target, int default_count) {
  TargetContext ctx{ScratchDir(target), nullptr};
  const std::vector<std::string>& seeds = target == "csv" ? CsvSeeds() : TsvSeeds();
  Campaign campaign(target, default_count);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const int variant = static_cast<int>(m.Below(5));
    const FileKind kind = PickFileKind(m);
    std::string text = seeds[i % seeds.size()];
    // Corrupt gzip mostly from a real gzip stream.
    if (kind == FileKind::kRawGz && !m.OneIn(4)) text = Gzip(text);
    const std::string input =
        WithSelector(LabeledSelector(variant, kind),
                     m.Mutate(text, /*text=*/kind != FileKind::kRawGz, 8192));
    campaign.Run(i, input, absl::StrCat("variant ", variant, ", ", KindName(kind)),
                 [&] { return RunTarget(target, input, ctx); });
  }
  fs::remove_all(ctx.scratch);
}

TEST(FuzzTest, TsvLabeledData) { FuzzLabeledData("tsv", kTsvInputs); }
TEST(FuzzTest, CsvLabeledData) { FuzzLabeledData("csv", kCsvInputs); }

TEST(FuzzTest, TextCorpus) {
  TargetContext ctx{ScratchDir("corpus"), nullptr};
  Campaign campaign("corpus", kCorpusInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const FileKind kind = PickFileKind(m);
    std::string text = CorpusSeeds()[i % CorpusSeeds().size()];
    if (kind == FileKind::kRawGz && !m.OneIn(4)) text = Gzip(text);
    const std::string input = WithSelector(
        static_cast<uint8_t>(kind), m.Mutate(text, /*text=*/kind != FileKind::kRawGz, 8192));
    campaign.Run(i, input, KindName(kind), [&] { return RunTarget("corpus", input, ctx); });
  }
  fs::remove_all(ctx.scratch);
}

TEST(FuzzTest, VocabPickle) {
  TargetContext ctx{ScratchDir("vocab"), nullptr};
  std::vector<std::string> seeds;
  for (const char* name : kVocabFixtures) seeds.push_back(Fixture(name));
  ASSERT_FALSE(seeds[0].empty() || seeds[1].empty());
  Campaign campaign("vocab", kVocabInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const std::string input = m.Mutate(seeds[i % seeds.size()], /*text=*/false, 4096);
    // Through a file, ReadVocab also reads the text vocabularies a mutation may turn it into.
    const bool via_file = m.OneIn(8);
    campaign.Run(i, input, via_file ? "ReadVocab" : "Unpickle, ParseVocabPickle",
                 [&] { return ReadVocabInput(input, via_file, ctx.scratch); });
  }
  fs::remove_all(ctx.scratch);
}

TEST(FuzzTest, TorchWeightsFile) {
  TargetContext ctx;
  std::vector<std::string> seeds;
  for (const char* name : kTorchFixtures) seeds.push_back(Fixture(name));
  ASSERT_FALSE(seeds[0].empty() || seeds[1].empty());
  Campaign campaign("torch_file", kTorchFileInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const std::string input = MutateBinary(seeds[i % seeds.size()], m);
    campaign.Run(i, input, kTorchFixtures[i % seeds.size()],
                 [&] { return RunTarget("torch_file", input, ctx); });
  }
}

TEST(FuzzTest, Checkpoint) {
  CpuGeneratorGuard generator;
  TargetContext ctx{ScratchDir("checkpoint"), nullptr};
  ctx.checkpoint = MakeTinyCheckpoint(ctx.scratch);
  ASSERT_NE(ctx.checkpoint, nullptr);
  Campaign campaign("checkpoint", kCheckpointInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const uint8_t file = static_cast<uint8_t>(i % 4);
    const std::string& pristine = ctx.checkpoint->files[kCheckpointFiles[file]];
    const std::string input = WithSelector(
        file, file == 0 ? m.Mutate(pristine, /*text=*/true, 4096) : MutateBinary(pristine, m));
    campaign.Run(i, input, kCheckpointFiles[file],
                 [&] { return RunTarget("checkpoint", input, ctx); });
  }
  fs::remove_all(ctx.scratch);
}

TEST(FuzzTest, ModuleWeights) {
  CpuGeneratorGuard generator;
  TargetContext ctx{ScratchDir("weights"), nullptr};
  ctx.checkpoint = MakeTinyCheckpoint(ctx.scratch);
  ASSERT_NE(ctx.checkpoint, nullptr);
  Campaign campaign("weights", kWeightsInputs);
  for (int i = 0; i < campaign.count(); ++i) {
    Mutator m = campaign.MutatorFor(i);
    const std::string input = MutateBinary(ctx.checkpoint->files["model.pt"], m);
    campaign.Run(i, input, "LoadModuleWeights", [&] { return RunTarget("weights", input, ctx); });
  }
  fs::remove_all(ctx.scratch);
}

// Replays one saved input: ULMFIT_FUZZ_REPLAY=$TMPDIR/ulmfit_fuzz_failures/TARGET-SEED-I.bin
// (any file named TARGET-...; TARGET is one of kTargets).
TEST(FuzzTest, Replay) {
  const char* path = std::getenv("ULMFIT_FUZZ_REPLAY");
  if (path == nullptr) GTEST_SKIP() << "set ULMFIT_FUZZ_REPLAY to a saved input";
  const std::string file = fs::path(path).filename().string();
  const std::string target = file.substr(0, file.find('-'));
  CpuGeneratorGuard generator;
  TargetContext ctx{ScratchDir("replay"), nullptr};
  const std::string input = ReadBytes(path);
  const auto start = std::chrono::steady_clock::now();
  const Verdict verdict = RunTarget(target, input, ctx);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[fuzz] " << target << ": " << (verdict.status.ok() ? "accepted" : "rejected")
            << " in " << seconds << " s: " << verdict.status << std::endl;
  EXPECT_EQ(Problem(verdict, input), "");
  EXPECT_LE(seconds, kMaxSecondsPerInput);
  fs::remove_all(ctx.scratch);
}

// ---------------------------------------------------------------------------------------------
// Regressions: the bugs the suite found, each with its input made minimal.

// A clean error: not OK, one line, naming `name` and saying `part`.
void ExpectOneLineError(const absl::Status& status, const std::string& name,
                        const std::string& part) {
  ASSERT_FALSE(status.ok());
  const std::string msg(status.message());
  EXPECT_EQ(msg.find_first_of("\n\r"), std::string::npos) << Shown(msg);
  EXPECT_NE(msg.find(name), std::string::npos) << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << msg;
  EXPECT_NE(status.code(), absl::StatusCode::kInternal) << msg;
}

// Was: the header fields shown in the message kept the newline of a quoted CSV field.
TEST(FuzzRegressionTest, CsvHeaderFieldWithANewlineIsShownEscaped) {
  const fs::path dir = ScratchDir("regression_csv");
  const std::string path = (dir / "t.csv").string();
  WriteBytes(path, "\"lab\nel\",text\npos,hello\n");
  TaskDataConfig config = LabeledVariant(1, /*csv=*/true);  // label_column: label
  ExpectOneLineError(ulmfit::ReadLabeledData(path, config).status(), path,
                     "no column 'label' in the header (columns: lab\\x0ael, text)");
  fs::remove_all(dir);
}

// Was: "the top level must be a map ..., got 'a<newline>b'" on two lines.
TEST(FuzzRegressionTest, ConfigWhoseTopLevelIsAMultiLineStringIsAOneLineError) {
  ExpectOneLineError(ulmfit::LoadConfigFromString("\"a\\nb\"\n", "x.yaml").status(), "x.yaml",
                     "the top level must be a map");
}

// Was: a leak (LeakSanitizer, torch_file_fuzzer): a list appended to itself through the memo
// kept itself alive. Now refused; a cycle left on the stack is freed (not visible here).
TEST(FuzzRegressionTest, PickleWithAListInsideItselfIsRefused) {
  // PROTO 2, EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP: l = []; l.append(l)
  const std::string cyclic("\x80\x02]q\x00h\x00" "a.", 9);
  ExpectOneLineError(ulmfit::Unpickle(cyclic, {"c.pkl", 0, false}).status(), "c.pkl",
                     "puts a container inside itself");
  ExpectOneLineError(ulmfit::ParseVocabPickle(cyclic, "c.pkl").status(), "c.pkl",
                     "puts a container inside itself");
  // The same list dropped (POP) before a None is returned: not part of the result, accepted.
  absl::StatusOr<ulmfit::Unpickled> dropped =
      ulmfit::Unpickle(std::string("\x80\x02]q\x00h\x00" "a0N.", 11), {"c.pkl", 0, false});
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_TRUE(dropped->value.is(ulmfit::PickleValue::Kind::kNone));
  // Shared but acyclic (the memo's usual use): [[], same []] is fine.
  absl::StatusOr<ulmfit::Unpickled> shared = ulmfit::Unpickle(
      std::string("\x80\x02](]q\x01h\x01" "e.", 11), {"c.pkl", 0, false});
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->value.items().size(), 2u);
}

// The tiny model's weights file as zip entries, for edits with fresh CRCs.
struct WeightsArchive {
  fs::path dir;
  std::unique_ptr<TinyCheckpoint> ck;
  ZipEntries zip;

  explicit WeightsArchive(const std::string& name) : dir(ScratchDir(name)) {
    ck = MakeTinyCheckpoint(dir);
    if (ck != nullptr) zip.Read(ck->files["model.pt"]);
  }
  ~WeightsArchive() { fs::remove_all(dir); }
  // LoadModuleWeights of the edited archive, and how long it took.
  absl::Status Load(double* seconds = nullptr) {
    const std::string path = (dir / "w.pt").string();
    WriteBytes(path, zip.Write());
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = ulmfit::LoadModuleWeights(*ck->model, path);
    if (seconds != nullptr) {
      *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return status;
  }
  std::string path() const { return (dir / "w.pt").string(); }
};

// Was: a segfault. libtorch 1.13 built the 4-element tensor '1.running_mean' over its storage
// file emptied (model.pt/data/1) and read past its end.
TEST(FuzzRegressionTest, WeightsWithAStorageShorterThanItsTensorAreRefused) {
  CpuGeneratorGuard generator;
  WeightsArchive w("regression_storage");
  ASSERT_NE(w.ck, nullptr);
  ASSERT_NE(w.zip.Find("/data/1"), nullptr);
  ASSERT_TRUE(w.Load().ok());  // the archive as written
  *w.zip.Find("/data/1") = "";
  ExpectOneLineError(w.Load(), w.path(), "names a storage of 4 elements that");
}

// Was: 2-3 s and 3.4 GB: libtorch believed a string length of 0xDB000001 in data.pkl.
TEST(FuzzRegressionTest, WeightsWithAHugeStringLengthAreRefusedAtOnce) {
  CpuGeneratorGuard generator;
  WeightsArchive w("regression_length");
  ASSERT_NE(w.ck, nullptr);
  std::string* pkl = w.zip.Find("/data.pkl");
  ASSERT_NE(pkl, nullptr);
  // BINUNICODE of '0.weight': 'X', a 4-byte little-endian length, the bytes.
  const size_t at = pkl->find(std::string("X\x08\x00\x00\x00" "0.weight", 13));
  ASSERT_NE(at, std::string::npos);
  pkl->replace(at + 1, 4, std::string("\x01\x00\x00\xDB", 4));
  double seconds = 0;
  ExpectOneLineError(w.Load(&seconds), w.path(), "the data ends inside the pickle");
  EXPECT_LT(seconds, 0.5);
}

// Was: 20-30 s of allocation and then std::bad_alloc: libtorch sized its memo vector by a
// LONG_BINPUT index of 829,320,821 in data.pkl.
TEST(FuzzRegressionTest, WeightsWithAHugeMemoIndexAreRefusedAtOnce) {
  CpuGeneratorGuard generator;
  WeightsArchive w("regression_memo");
  ASSERT_NE(w.ck, nullptr);
  std::string* pkl = w.zip.Find("/data.pkl");
  ASSERT_NE(pkl, nullptr);
  // The BINPUT after the key '0.weight' becomes LONG_BINPUT 829320821 (0x316E6E75).
  const std::string key("0.weight", 8);
  const size_t at = pkl->find(key);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ((*pkl)[at + key.size()], 'q');
  pkl->replace(at + key.size(), 2, std::string("r\x75\x6E\x6E\x31", 5));
  double seconds = 0;
  ExpectOneLineError(w.Load(&seconds), w.path(), "LONG_BINPUT 829320821 is past the");
  EXPECT_LT(seconds, 0.5);
}

// Was: TorchScript's parse error (not a c10::Error) escaped LoadModuleWeights.
TEST(FuzzRegressionTest, WeightsWithABrokenCodeFileAreAOneLineError) {
  CpuGeneratorGuard generator;
  WeightsArchive w("regression_code");
  ASSERT_NE(w.ck, nullptr);
  std::string* code = w.zip.Find("/code/__torch__.py");
  ASSERT_NE(code, nullptr);
  *code = "class Module(Module):\n  __par`meters__ = []\n";
  ExpectOneLineError(w.Load(), w.path(), "corrupt or unreadable weights file");
}

// Was: std::out_of_range ("Argument passed to at() was not in the map") escaped LoadModuleWeights
// for an attribute data.pkl sets but the module's class does not declare.
TEST(FuzzRegressionTest, WeightsWithAnUndeclaredAttributeAreAOneLineError) {
  CpuGeneratorGuard generator;
  WeightsArchive w("regression_attribute");
  ASSERT_NE(w.ck, nullptr);
  std::string* pkl = w.zip.Find("/data.pkl");
  ASSERT_NE(pkl, nullptr);
  const size_t at = pkl->find("1.running_var");
  ASSERT_NE(at, std::string::npos);
  (*pkl)[at + 12] = 'X';
  ExpectOneLineError(w.Load(), w.path(), "corrupt or unreadable weights file");
}

// Was: a segfault in libtorch's TorchScript importer (parseClassConstant) on a damaged code/
// file. A damaged file is now refused by its CRC before libtorch reads it, whether the entry is
// deflated (model.pt) or stored (optimizer.pt).
TEST(FuzzRegressionTest, DamagedCodeFilesAreRefusedByTheirCrc) {
  CpuGeneratorGuard generator;
  const fs::path dir = ScratchDir("regression_crc");
  std::unique_ptr<TinyCheckpoint> ck = MakeTinyCheckpoint(dir);
  ASSERT_NE(ck, nullptr);
  for (const std::string file : {"model.pt", "optimizer.pt"}) {
    std::string archive = ck->files[file];
    absl::StatusOr<std::vector<ulmfit::ZipEntry>> entries =
        ulmfit::ReadZipDirectory(archive, file, /*allow_compressed=*/true);
    ASSERT_TRUE(entries.ok()) << entries.status();
    bool damaged = false;
    for (const ulmfit::ZipEntry& e : *entries) {
      // A class file: deflated in model.pt, stored in optimizer.pt (its small ones).
      if (!damaged && e.name.find("/code/") != std::string::npos &&
          absl::EndsWith(e.name, ".py") && e.compressed == (file == "model.pt")) {
        archive[e.data_offset + e.size / 2] ^= 0x20;
        damaged = true;
      }
    }
    ASSERT_TRUE(damaged) << file;
    const Verdict v = ReadCheckpointInput(*ck, file, archive);
    ExpectOneLineError(v.status, (fs::path(ck->dir) / file).string(), "is damaged");
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ulmfit_fuzz

// The restricted unpickler and the pickle writer (interop/pickle.h), vocab files
// (interop/vocab.h) and the zip reader/writer (interop/zip.h).
//
// The vocab pickle and the ZIP64 archive written here were checked by hand with Python:
//   ULMFIT_KEEP_INTEROP_FILES=/tmp/keep build/ulmfit_tests --gtest_filter='Pickle*:InteropZip*'
//   /usr/bin/python3 -c "import pickle; t=pickle.load(open('/tmp/keep/itos_out.pkl','rb')); \
//     print(t == pickle.load(open('tests/fixtures/fastai/itos_p4.pkl','rb')))"
//   /usr/bin/python3 -c "import zipfile; z=zipfile.ZipFile('/tmp/keep/zip64.zip'); \
//     print(z.testzip(), z.read('archive/data/0'))"
// which printed "True" and "None b'0123456789'".
#include "interop/pickle.h"
#include "interop/vocab.h"
#include "interop/zip.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "util/files.h"

namespace ulmfit {
namespace {

using Kind = PickleValue::Kind;

std::string Fixture(const std::string& name) {
  return std::string(ULMFIT_SOURCE_DIR) + "/tests/fixtures/fastai/" + name;
}

// A string of all the literal's bytes, NULs included.
template <size_t N>
std::string B(const char (&s)[N]) {
  return std::string(s, N - 1);
}

absl::StatusOr<Unpickled> Read(const std::string& bytes, const std::string& where = "x.pkl") {
  return Unpickle(bytes, {where, 0, false});
}

// Checks that `bytes` fails with one line that starts with "x.pkl: " and contains `part`.
void ExpectError(const std::string& bytes, const std::string& part) {
  absl::StatusOr<Unpickled> r = Read(bytes);
  ASSERT_FALSE(r.ok()) << "accepted: " << part;
  const std::string msg(r.status().message());
  EXPECT_EQ(msg.rfind("x.pkl: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

TEST(PickleTest, ReadsFastaiVocabPicklesOfProtocols2And4) {
  auto p2 = ReadVocab(Fixture("itos_p2.pkl"));
  auto p4 = ReadVocab(Fixture("itos_p4.pkl"));  // FRAME, SHORT_BINUNICODE, MEMOIZE
  ASSERT_TRUE(p2.ok()) << p2.status();
  ASSERT_TRUE(p4.ok()) << p4.status();
  EXPECT_EQ(*p2, *p4);
  ASSERT_EQ(p2->size(), 50u);
  const std::vector<std::string> special = {"xxunk", "xxpad", "xxbos", "xxeos", "xxfld",
                                            "xxrep", "xxwrep", "xxup",  "xxmaj"};
  EXPECT_EQ(std::vector<std::string>(p2->begin(), p2->begin() + 9), special);
  EXPECT_EQ((*p2)[19], "café");
  EXPECT_EQ((*p2)[21], "日本");
  EXPECT_EQ((*p2)[22], std::string(300, 'x'));  // BINUNICODE even in protocol 4
}

TEST(PickleTest, VocabPickleAndTextRoundTrip) {
  const auto dir = std::filesystem::temp_directory_path() / ("ulmfit_interop_vocab_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto tokens = ReadVocab(Fixture("itos_p4.pkl"));
  ASSERT_TRUE(tokens.ok());
  const std::string out = (dir / "itos.pkl").string();
  ASSERT_TRUE(WriteVocabPickle(out, *tokens).ok());
  auto back = ReadVocab(out);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, *tokens);
  if (const char* keep = std::getenv("ULMFIT_KEEP_INTEROP_FILES")) {
    ASSERT_TRUE(WriteVocabPickle(std::string(keep) + "/itos_out.pkl", *tokens).ok());
  }

  auto text = ParseVocabText("xxunk\r\nxxpad\nthe\n", "v.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, (std::vector<std::string>{"xxunk", "xxpad", "the"}));
  auto blank = ParseVocabText("a\n\nb\n", "v.txt");
  ASSERT_FALSE(blank.ok());
  EXPECT_EQ(blank.status().message(), "v.txt:2: an empty line; a vocab file holds one token a line");
  auto not_list = ParseVocabPickle(B("\x80\x02K\x05."), "n.pkl");
  ASSERT_FALSE(not_list.ok());
  EXPECT_EQ(not_list.status().message(), "n.pkl: holds an int, not a list of tokens");
  std::filesystem::remove_all(dir);
}

TEST(PickleTest, WriterOutputReadsBack) {
  PickleValue d = PickleValue::NewDict(/*ordered=*/true);
  d.mutable_dict().Set("none", PickleValue());
  d.mutable_dict().Set("ints", PickleValue::List({PickleValue::Int(0), PickleValue::Int(255),
                                                  PickleValue::Int(256), PickleValue::Int(-1),
                                                  PickleValue::Int(70000),
                                                  PickleValue::Int(-(int64_t{1} << 40)),
                                                  PickleValue::Int(INT64_MAX)}));
  d.mutable_dict().Set("tuple", PickleValue::Tuple({PickleValue::Bool(true), PickleValue::Float(-0.125)}));
  PickleValue plain = PickleValue::NewDict(false);
  plain.mutable_dict().Set("s", PickleValue::String("naïve"));
  d.mutable_dict().Set("plain", plain);
  auto bytes = Pickle(d);
  ASSERT_TRUE(bytes.ok());
  auto r = Read(*bytes);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->end, bytes->size());
  const PickleValue::Dict& back = r->value.dict();
  EXPECT_TRUE(back.ordered);
  ASSERT_EQ(back.entries.size(), 4u);
  EXPECT_TRUE(back.Find("none")->is(Kind::kNone));
  std::vector<int64_t> ints;
  for (const auto& v : back.Find("ints")->items()) ints.push_back(v.AsInt());
  EXPECT_EQ(ints, (std::vector<int64_t>{0, 255, 256, -1, 70000, -(int64_t{1} << 40), INT64_MAX}));
  EXPECT_TRUE(back.Find("tuple")->items()[0].AsBool());
  EXPECT_EQ(back.Find("tuple")->items()[1].AsFloat(), -0.125);
  EXPECT_FALSE(back.Find("plain")->dict().ordered);
  EXPECT_EQ(back.Find("plain")->dict().Find("s")->AsString(), "naïve");
  EXPECT_FALSE(Pickle(PickleValue::Bytes("b")).ok());
}

TEST(PickleTest, OrderedDictMetadataBuildIsAcceptedAndIgnored) {
  // OrderedDict() then BUILD with {'_metadata': {...}}, as state_dict() pickles.
  const std::string bytes = B(
      "\x80\x02" "ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00" "aK\x01s"
      "}X\x09\x00\x00\x00_metadata}sb.");
  auto r = Read(bytes);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->value.dict().entries.size(), 1u);
  EXPECT_EQ(r->value.dict().Find("a")->AsInt(), 1);
}

TEST(PickleTest, RefusesGlobalsOutsideTheAllowList) {
  const std::string evil = B("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
  auto r = Read(evil, "model.pth");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(r.status()));
  EXPECT_EQ(r.status().message(),
            "model.pth: byte 2: the pickle names global 'os.system', which a weights file may "
            "not use; only tensors and dictionaries are read");
  // STACK_GLOBAL (protocol 4) is checked the same way.
  ExpectError(B("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."), "'builtins.eval'");
  // With opaque globals the object stays an inert name; nothing is called.
  auto opaque = Unpickle(evil, {"model.pth", 0, /*opaque_globals=*/true});
  ASSERT_TRUE(opaque.ok());
  EXPECT_TRUE(opaque->value.is(Kind::kOpaque));
  EXPECT_EQ(opaque->value.AsString(), "os.system");
}

TEST(PickleTest, RefusesCallsAndOpcodesAWeightsFileDoesNotNeed) {
  ExpectError(B("\x80\x02" "ctorch\nFloatStorage\n)R."),
              "REDUCE calls 'torch.FloatStorage' with 0 arguments, which a weights file may not do");
  ExpectError(B("\x80\x02(i__main__\nX\n."), "byte 3: the pickle uses opcode INST");
  ExpectError(B("\x80\x02K\x01K\x02" "b."), "BUILD sets the state of an int");
  ExpectError(B("\x80\x01N."), "pickle protocol 1 is not read");
  ExpectError(B("\x80\x02\x8a\x0a" "0123456789."), "LONG1 holds an integer of 10 bytes");
}

TEST(PickleTest, MalformedStreamsAreOneLineErrors) {
  ExpectError(B("\x80\x02X\x10\x00\x00\x00" "abc"),
              "byte 2: the data ends inside the pickle (BINUNICODE needs 16 bytes, 3 are left)");
  ExpectError(B("\x80\x02h\x05."), "byte 2: BINGET 5 refers to no stored object (0 stored)");
  ExpectError(B("\x80\x02" "a."), "APPEND finds the stack empty");
  ExpectError(B("\x80\x02K\x01"), "byte 4: the data ends before the pickle's STOP");
  ExpectError(B("\x80\x02N(t}N\x85" "u."), "SETITEMS has no MARK to go back to");
  ExpectError(B("\x80\x02(."), "STOP finds the stack empty");
  ExpectError("", "the data ends before the pickle's STOP");
}

TEST(PickleTest, LimitsBoundWhatAPickleCanClaim) {
  TensorRef ref;
  ref.storage_key = "0";
  ref.storage_numel = 1;
  ref.size.assign(65, 1);
  ref.stride.assign(65, 1);
  ExpectError(Pickle(PickleValue::Tensor(ref)).value(), "describes a tensor of 65 dimensions");
  ref.size.assign(2, 3);  // 9 elements from a storage of 1
  ref.stride.assign(2, 0);
  ExpectError(Pickle(PickleValue::Tensor(ref)).value(), "describes a tensor outside its storage");
  // NONE, POP over and over: a small stack, but more values than any real file builds.
  std::string many = B("\x80\x02");
  for (int i = 0; i <= (1 << 24); ++i) many += "N0";
  ExpectError(many + "N.", "builds more than 2^24 values");
}

TEST(PickleTest, IntegersAndMemoSharing) {
  // BININT -2, LONG1 of 2 bytes 0xff7f = -129, then a list put in the memo, fetched back and
  // appended to: the change shows in the first reference as in Python.
  const std::string bytes =
      B("\x80\x02(J\xfe\xff\xff\xff\x8a\x02\x7f\xff]q\x07h\x07K\x09" "a0t.");
  auto r = Read(bytes);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& items = r->value.items();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].AsInt(), -2);
  EXPECT_EQ(items[1].AsInt(), -129);
  ASSERT_EQ(items[2].items().size(), 1u);
  EXPECT_EQ(items[2].items()[0].AsInt(), 9);
  // An int dictionary key (a torch optimizer's state) becomes its decimal text.
  auto keyed = Read(B("\x80\x02}K\x07Ns."));
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  EXPECT_TRUE(keyed->value.dict().Find("7")->is(Kind::kNone));
  ExpectError(B("\x80\x02}NNs."), "SETITEM uses None as a dictionary key");
}

TEST(PickleTest, DeeplyNestedListsAreFreedWithoutRecursion) {
  // Each step appends a new list to the deepest one (kept in memo 0): 300k levels.
  std::string bytes = B("\x80\x02]q\x00");
  for (int i = 0; i < 300000; ++i) bytes += B("h\x00]q\x00" "a0");
  bytes += ".";
  auto r = Read(bytes);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value.items().size(), 1u);
}

TEST(InteropZipTest, WriterOutputReadsBackAligned) {
  const std::string big(1000, 'z');
  auto zip = WriteZip({{"archive/data.pkl", "pickle"}, {"archive/data/0", big}, {"a/b", ""}});
  ASSERT_TRUE(zip.ok());
  auto entries = ReadZipDirectory(*zip, "t.zip");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[1].name, "archive/data/0");
  for (const auto& e : *entries) EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
  auto data = ZipEntryData(*zip, (*entries)[1], "t.zip");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(*data, big);
  std::string damaged = *zip;
  damaged[(*entries)[1].data_offset + 10] = 'y';
  auto bad = ZipEntryData(damaged, (*entries)[1], "t.zip");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "t.zip: zip entry 'archive/data/0' is damaged (CRC-32 mismatch)");
}

// Rewrites WriteZip's archive with ZIP64 records: sizes and offsets in the central directory's
// ZIP64 extra field (0xffffffff in the 32-bit fields), a ZIP64 end record and its locator.
std::string ToZip64(const std::string& zip, const std::vector<ZipEntry>& entries) {
  auto le = [](std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto read = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(zip[at + i]);
    return v;
  };
  const size_t end = zip.size() - 22;
  const size_t dir_at = read(end + 16, 4);
  std::string out = zip.substr(0, dir_at), dir;
  size_t at = dir_at;
  for (size_t i = 0; i < entries.size(); ++i) {
    const uint64_t name_len = read(at + 28, 2);
    std::string header = zip.substr(at, 46);
    const uint64_t offset = read(at + 42, 4);
    for (size_t f : {20, 24, 42}) header.replace(f, 4, std::string(4, '\xff'));
    header.replace(30, 2, B("\x1c\x00"));  // extra length 28
    dir += header + zip.substr(at + 46, name_len);
    le(dir, 1, 2), le(dir, 24, 2), le(dir, entries[i].size, 8), le(dir, entries[i].size, 8);
    le(dir, offset, 8);
    at += 46 + name_len;
  }
  const uint64_t new_dir_at = out.size();
  out += dir;
  const uint64_t zip64_end_at = out.size();
  le(out, 0x06064b50, 4), le(out, 44, 8), le(out, 45, 2), le(out, 45, 2), le(out, 0, 4);
  le(out, 0, 4), le(out, entries.size(), 8), le(out, entries.size(), 8), le(out, dir.size(), 8);
  le(out, new_dir_at, 8);
  le(out, 0x07064b50, 4), le(out, 0, 4), le(out, zip64_end_at, 8), le(out, 1, 4);
  le(out, 0x06054b50, 4), le(out, 0, 4), le(out, 0xffff, 2), le(out, 0xffff, 2);
  le(out, 0xffffffff, 4), le(out, 0xffffffff, 4), le(out, 0, 2);
  return out;
}

TEST(InteropZipTest, ReadsZip64RecordsAndRefusesCompressedEntries) {
  auto zip = WriteZip({{"archive/data.pkl", "pickle"}, {"archive/data/0", "0123456789"}});
  ASSERT_TRUE(zip.ok());
  auto entries = ReadZipDirectory(*zip, "t.zip");
  ASSERT_TRUE(entries.ok());
  const std::string zip64 = ToZip64(*zip, *entries);
  auto again = ReadZipDirectory(zip64, "t.zip");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[1].data_offset, (*entries)[1].data_offset);
  EXPECT_EQ(*ZipEntryData(zip64, (*again)[1], "t.zip"), "0123456789");
  if (const char* keep = std::getenv("ULMFIT_KEEP_INTEROP_FILES")) {
    ASSERT_TRUE(WriteFileAtomic(std::string(keep) + "/zip64.zip", zip64).ok());
  }

  std::string deflated = *zip;
  const size_t dir_at = deflated.size() - 22 - 2 * 46 - 16 - 14;  // the first directory entry
  ASSERT_EQ(deflated.substr(dir_at, 4), B("PK\x01\x02"));
  deflated[dir_at + 10] = 8;
  auto refused = ReadZipDirectory(deflated, "t.zip");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            "t.zip: zip entry 'archive/data.pkl' is compressed (method 8); torch.save stores "
            "entries uncompressed");
}

}  // namespace
}  // namespace ulmfit

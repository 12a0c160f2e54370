#include "interop/zip.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "interop/pickle.h"  // Quoted

namespace ulmfit {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30, kCentralHeaderSize = 46, kEndSize = 22;
constexpr size_t kZip64EndSize = 56, kZip64LocatorSize = 20;
constexpr uint64_t kAlignment = 64;

uint64_t Le(std::string_view b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

void PutLe(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t Crc32(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!data.empty()) {  // zlib takes 32-bit lengths
    const size_t n = std::min<size_t>(data.size(), size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n));
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

// Where the central directory is and how many entries it holds.
struct Directory {
  uint64_t offset = 0, size = 0, entries = 0;
};

absl::StatusOr<Directory> FindDirectory(std::string_view z, const std::string& where) {
  if (z.size() < kEndSize) return absl::InvalidArgumentError(where + ": too short for a zip archive");
  // The end record sits before a comment of at most 65535 bytes.
  size_t end = z.size() - kEndSize;
  const size_t lowest = z.size() > kEndSize + 0xffff ? z.size() - kEndSize - 0xffff : 0;
  while (Le(z, end, 4) != kEndSig || end + kEndSize + Le(z, end + 20, 2) > z.size()) {
    if (end == lowest) {
      return absl::InvalidArgumentError(where + ": no zip end-of-directory record; the file is truncated or not a zip archive");
    }
    --end;
  }
  Directory dir{Le(z, end + 16, 4), Le(z, end + 12, 4), Le(z, end + 10, 2)};
  if (Le(z, end + 4, 2) != 0 || Le(z, end + 6, 2) != 0) {
    return absl::InvalidArgumentError(where + ": a zip archive split over several disks is not read");
  }
  if (end >= kZip64LocatorSize && Le(z, end - kZip64LocatorSize, 4) == kZip64LocatorSig) {
    const uint64_t at = Le(z, end - kZip64LocatorSize + 8, 8);
    if (z.size() < kZip64EndSize || at > z.size() - kZip64EndSize || Le(z, at, 4) != kZip64EndSig) {
      return absl::InvalidArgumentError(where + ": the ZIP64 end-of-directory record is missing or damaged");
    }
    dir = {Le(z, at + 48, 8), Le(z, at + 40, 8), Le(z, at + 32, 8)};
  }
  if (dir.offset > z.size() || dir.size > z.size() - dir.offset ||
      dir.entries > dir.size / kCentralHeaderSize) {
    return absl::InvalidArgumentError(where + ": the zip directory lies outside the file; it is truncated or damaged");
  }
  return dir;
}

// Fills sizes and the local-header offset from a ZIP64 extra field (id 1), in the order the
// format fixes: only the fields whose 32-bit value is 0xffffffff are present.
bool ApplyZip64Extra(std::string_view extra, uint64_t& size, uint64_t& csize, uint64_t& offset) {
  for (size_t at = 0; at + 4 <= extra.size();) {
    const uint64_t id = Le(extra, at, 2), len = Le(extra, at + 2, 2);
    if (at + 4 + len > extra.size()) return false;
    if (id == 1) {
      size_t p = at + 4;
      for (uint64_t* field : {&size, &csize, &offset}) {
        if (*field != 0xffffffff) continue;
        if (p + 8 > at + 4 + len) return false;
        *field = Le(extra, p, 8);
        p += 8;
      }
    }
    at += 4 + len;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(std::string_view z, const std::string& where,
                                                       bool allow_compressed) {
  ASSIGN_OR_RETURN(Directory dir, FindDirectory(z, where));
  std::vector<ZipEntry> entries;
  entries.reserve(dir.entries);
  const uint64_t dir_end = dir.offset + dir.size;
  uint64_t at = dir.offset;
  for (uint64_t i = 0; i < dir.entries; ++i) {
    const std::string bad = absl::StrCat(where, ": zip directory entry ", i, " at byte ", at);
    if (at + kCentralHeaderSize > dir_end || Le(z, at, 4) != kCentralHeaderSig) {
      return absl::InvalidArgumentError(bad + " is damaged");
    }
    const uint64_t name_len = Le(z, at + 28, 2), extra_len = Le(z, at + 30, 2);
    const uint64_t next = at + kCentralHeaderSize + name_len + extra_len + Le(z, at + 32, 2);
    if (next > dir_end) return absl::InvalidArgumentError(bad + " runs past the directory");
    ZipEntry e;
    e.name = std::string(z.substr(at + kCentralHeaderSize, name_len));
    e.crc32 = static_cast<uint32_t>(Le(z, at + 16, 4));
    uint64_t csize = Le(z, at + 20, 4), offset = Le(z, at + 42, 4);
    e.size = Le(z, at + 24, 4);
    if (!ApplyZip64Extra(z.substr(at + kCentralHeaderSize + name_len, extra_len), e.size, csize, offset)) {
      return absl::InvalidArgumentError(bad + " has a damaged ZIP64 extra field");
    }
    const std::string named = absl::StrCat(where, ": zip entry ", Quoted(e.name));
    if (Le(z, at + 8, 2) & 1) return absl::InvalidArgumentError(named + " is encrypted");
    if (const uint64_t method = Le(z, at + 10, 2); method == 8 && allow_compressed) {
      e.compressed = true;
      e.size = csize;
    } else if (method != 0 || csize != e.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          named, " is compressed (method ", method, "); torch.save stores entries uncompressed"));
    }
    // The local header repeats the name with its own extra field (PyTorch's alignment padding).
    if (z.size() < kLocalHeaderSize || offset > z.size() - kLocalHeaderSize || Le(z, offset, 4) != kLocalHeaderSig) {
      return absl::InvalidArgumentError(named + " has no local header where the directory says");
    }
    e.data_offset = offset + kLocalHeaderSize + Le(z, offset + 26, 2) + Le(z, offset + 28, 2);
    if (e.data_offset > z.size() || e.size > z.size() - e.data_offset) {
      return absl::InvalidArgumentError(absl::StrCat(named, " (", e.size,
                                                     " bytes) runs past the end of the file"));
    }
    entries.push_back(std::move(e));
    at = next;
  }
  return entries;
}

absl::StatusOr<std::string_view> ZipEntryData(std::string_view archive, const ZipEntry& entry,
                                              const std::string& where) {
  if (entry.compressed) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": zip entry ", Quoted(entry.name), " is compressed; it is not read"));
  }
  std::string_view data = archive.substr(entry.data_offset, entry.size);
  if (Crc32(data) != entry.crc32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": zip entry ", Quoted(entry.name), " is damaged (CRC-32 mismatch)"));
  }
  return data;
}

absl::Status CheckZipEntry(std::string_view archive, const ZipEntry& entry,
                           const std::string& where, uint64_t max_inflated) {
  if (!entry.compressed) return ZipEntryData(archive, entry, where).status();
  const std::string bad = absl::StrCat(where, ": zip entry ", Quoted(entry.name), " is damaged");
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return absl::InvalidArgumentError(bad);
  std::string_view in = archive.substr(entry.data_offset, entry.size);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t inflated = 0;
  char buffer[1 << 14];
  int rc = Z_OK;
  while (rc == Z_OK && inflated <= max_inflated) {
    if (z.avail_in == 0 && !in.empty()) {  // zlib takes 32-bit lengths
      const size_t n = std::min<size_t>(in.size(), size_t{1} << 30);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(n);
      in.remove_prefix(n);
    }
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    const uInt out = sizeof buffer - z.avail_out;
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer), out);
    inflated += out;
    if (rc == Z_BUF_ERROR && out > 0) rc = Z_OK;  // only the output buffer was full
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return absl::InvalidArgumentError(
        inflated > max_inflated
            ? absl::StrCat(bad, " (it inflates to more than ", max_inflated, " bytes)")
            : absl::StrCat(bad, " (corrupt deflate data)"));
  }
  if (static_cast<uint32_t>(crc) != entry.crc32) {
    return absl::InvalidArgumentError(absl::StrCat(bad, " (CRC-32 mismatch)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> WriteZip(const std::vector<ZipRecord>& records) {
  std::string out, directory;
  for (const auto& r : records) {
    const uint64_t offset = out.size();
    // Pad through an extra field (id 0x4246, "FB", as PyTorch) so the data starts aligned.
    const uint64_t header_end = offset + kLocalHeaderSize + r.name.size() + 4;
    const uint64_t pad = (kAlignment - header_end % kAlignment) % kAlignment;
    if (offset + kLocalHeaderSize + r.name.size() + 4 + pad + r.data.size() >= 0xffffffff ||
        r.name.size() > 0xffff || records.size() >= 0xffff) {
      return absl::InvalidArgumentError("the archive would need ZIP64 (4 GiB or more), which is not written");
    }
    const uint32_t crc = Crc32(r.data);
    // version needed, flags, method, time, date (1980-01-01), crc, sizes, name and extra lengths
    auto common = [&](std::string& s) {
      PutLe(s, 20, 2), PutLe(s, 0, 2), PutLe(s, 0, 2), PutLe(s, 0, 2), PutLe(s, 0x21, 2);
      PutLe(s, crc, 4), PutLe(s, r.data.size(), 4), PutLe(s, r.data.size(), 4);
    };
    PutLe(out, kLocalHeaderSig, 4);
    common(out);
    PutLe(out, r.name.size(), 2), PutLe(out, 4 + pad, 2);
    out += r.name;
    PutLe(out, 0x4246, 2), PutLe(out, pad, 2);
    out.append(pad, '\0');
    out.append(r.data);

    PutLe(directory, kCentralHeaderSig, 4), PutLe(directory, 20, 2);  // made by: version 2.0
    common(directory);
    PutLe(directory, r.name.size(), 2), PutLe(directory, 0, 2), PutLe(directory, 0, 2);
    PutLe(directory, 0, 2), PutLe(directory, 0, 2), PutLe(directory, 0, 4);  // disk, attributes
    PutLe(directory, offset, 4);
    directory += r.name;
  }
  const uint64_t dir_offset = out.size();
  if (dir_offset + directory.size() >= 0xffffffff) {
    return absl::InvalidArgumentError("the archive would need ZIP64 (4 GiB or more), which is not written");
  }
  out += directory;
  PutLe(out, kEndSig, 4), PutLe(out, 0, 2), PutLe(out, 0, 2);
  PutLe(out, records.size(), 2), PutLe(out, records.size(), 2);
  PutLe(out, directory.size(), 4), PutLe(out, dir_offset, 4), PutLe(out, 0, 2);
  return out;
}

}  // namespace ulmfit

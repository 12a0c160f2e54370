// A minimal ZIP reader and writer for the archives torch.save writes (torch >= 1.6): entries
// are stored uncompressed, their data often padded to 64-byte alignment through the local
// header's extra field. The reader follows the central directory, with ZIP64 records and extra
// fields; it refuses compressed or encrypted entries and archives split over disks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ulmfit {

struct ZipEntry {
  std::string name;
  uint64_t data_offset = 0;  // where the entry's bytes start in the archive
  uint64_t size = 0;         // of the bytes stored (compressed ones for a compressed entry)
  uint32_t crc32 = 0;
  bool compressed = false;   // deflated: listed with allow_compressed only, never read here
};

// Lists the entries in central-directory order. Errors are one line starting with `where`.
// With `allow_compressed`, deflated entries are listed instead of refused: libtorch's own
// archives (OutputArchive::save_to) deflate their code/ files.
absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(std::string_view archive,
                                                       const std::string& where,
                                                       bool allow_compressed = false);

// The entry's bytes, after checking them against the directory's CRC-32. A compressed entry is
// an error.
absl::StatusOr<std::string_view> ZipEntryData(std::string_view archive, const ZipEntry& entry,
                                              const std::string& where);

// Checks the entry's bytes against the directory's CRC-32; a compressed entry is inflated
// first, to at most `max_inflated` bytes.
absl::Status CheckZipEntry(std::string_view archive, const ZipEntry& entry,
                           const std::string& where, uint64_t max_inflated = uint64_t{1} << 26);

struct ZipRecord {
  std::string name;
  std::string_view data;
};

// An archive of stored entries, in order, each entry's data starting at a multiple of 64 bytes
// as PyTorch's writer does. Archives of 4 GiB or more (ZIP64) are not written.
absl::StatusOr<std::string> WriteZip(const std::vector<ZipRecord>& records);

}  // namespace ulmfit

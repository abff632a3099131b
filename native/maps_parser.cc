#include "maps_parser.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "procmap_query.h"
#include "readonly_file.h"
#include "system_error.h"

namespace pagewalk {

namespace {

// The VMA flags the query reports share their bit values with MapFlag
// (readable, writable, executable, shared).
constexpr uint64_t kKernelHalf = uint64_t{1} << 63;

bool selected(const MapRecord& r, MapSelection selection) {
  if (r.start >= kKernelHalf) return false;
  if (selection == MapSelection::kShmemCandidates) return r.devMajor == 0 && r.inode != 0;
  if (selection == MapSelection::kFileBacked) return r.inode != 0;
  return true;
}

// Returns false when the kernel has no PROCMAP_QUERY (before 6.11).
bool queryRecords(int fd, const std::string& path, MapSelection selection, std::vector<MapRecord>& out) {
  ProcmapQuery q{};
  uint64_t addr = 0;
  for (;;) {
    q = ProcmapQuery{};
    q.size = sizeof q;
    // The file-backed filter makes the kernel skip anonymous mappings
    // itself: one call per shmem candidate's neighbourhood, not per mapping.
    q.query_flags = kQueryCoveringOrNext | (selection != MapSelection::kAll ? kQueryFileBacked : 0);
    q.query_addr = addr;
    int rc;
    do {
      rc = ::ioctl(fd, kProcmapQuery, &q);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      if (errno == ENOENT) return true;  // no mapping at or after addr
      if (errno == ESRCH) {              // no mm: kernel thread, zombie, or gone
        out.clear();
        return true;
      }
      if (errno == ENOTTY || errno == EINVAL) {
        if (!out.empty()) throw SystemError(errno, "ioctl", path, "PROCMAP_QUERY");
        return false;
      }
      throw SystemError(errno, "ioctl", path, "PROCMAP_QUERY");
    }
    MapRecord r;
    r.start = q.vma_start;
    r.end = q.vma_end;
    r.offset = q.vma_offset;
    r.inode = q.inode;
    r.devMajor = q.dev_major;
    r.devMinor = q.dev_minor;
    r.flags = static_cast<uint32_t>(q.vma_flags & (kMapRead | kMapWrite | kMapExec | kMapShared));
    if (selected(r, selection)) out.push_back(r);
    if (q.vma_end <= addr) return true;  // cannot happen; never loop forever
    addr = q.vma_end;
  }
}

uint64_t parseHex(const char*& p, const char* end) {
  uint64_t v = 0;
  for (; p < end; p++) {
    const char c = *p;
    if (c >= '0' && c <= '9')
      v = (v << 4) | static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v = (v << 4) | static_cast<uint64_t>(c - 'a' + 10);
    else
      break;
  }
  return v;
}

uint64_t parseDecimal(const char*& p, const char* end) {
  uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) v = v * 10 + static_cast<uint64_t>(*p - '0');
  return v;
}

// One line: "start-end perms offset major:minor inode [path]".
void parseMapsText(const char* text, size_t length, MapSelection selection, std::vector<MapRecord>& out) {
  const char* p = text;
  const char* end = text + length;
  while (p < end) {
    const char* lineEnd = p;
    while (lineEnd < end && *lineEnd != '\n') lineEnd++;
    MapRecord r;
    r.start = parseHex(p, lineEnd);
    if (p < lineEnd && *p == '-') p++;
    r.end = parseHex(p, lineEnd);
    if (p < lineEnd) p++;
    if (lineEnd - p >= 4) {
      if (p[0] == 'r') r.flags |= kMapRead;
      if (p[1] == 'w') r.flags |= kMapWrite;
      if (p[2] == 'x') r.flags |= kMapExec;
      if (p[3] == 's') r.flags |= kMapShared;
      p += 4;
    }
    if (p < lineEnd) p++;
    r.offset = parseHex(p, lineEnd);
    if (p < lineEnd) p++;
    r.devMajor = static_cast<uint32_t>(parseHex(p, lineEnd));
    if (p < lineEnd && *p == ':') p++;
    r.devMinor = static_cast<uint32_t>(parseHex(p, lineEnd));
    if (p < lineEnd) p++;
    r.inode = parseDecimal(p, lineEnd);
    if (r.end > r.start && selected(r, selection)) out.push_back(r);
    p = lineEnd + 1;
  }
}

void parseRecords(int fd, const std::string& path, MapSelection selection, std::vector<MapRecord>& out) {
  // The kernel fills at most a page per read; one buffer holds the whole
  // text, so a line is never split (60,000 mappings: about 3 MB).
  std::string text;
  size_t used = 0;
  for (;;) {
    if (text.size() - used < 65536) text.resize(text.size() + 262144);
    ssize_t n;
    do {
      n = ::read(fd, &text[used], text.size() - used);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == ESRCH) return;
      throw SystemError(errno, "read", path);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  parseMapsText(text.data(), used, selection, out);
}

}  // namespace

std::vector<MapRecord> readMapRecords(int pid, MapsReadOptions options) {
  ReadOnlyFile file("/proc/" + std::to_string(pid) + "/maps");
  return readMapRecords(file.fd(), file.path(), options);
}

std::vector<MapRecord> readMapRecords(int fd, const std::string& path, MapsReadOptions options) {
  std::vector<MapRecord> out;
  // PROCMAP_QUERY pays off only filtered: one ioctl per mapping costs more
  // than the kernel's text (60,000 mappings: 64 ms against 38 ms, 6.18), but
  // with the file-backed filter the kernel steps over anonymous mappings
  // itself (3.5 ms for 60,000 of them; 10-13 us for a process of 300
  // mappings, 6.18.44).
  const bool query = options.useQuery && options.selection != MapSelection::kAll;
  if (query && queryRecords(fd, path, options.selection, out)) return out;
  out.clear();
  parseRecords(fd, path, options.selection, out);
  return out;
}

}  // namespace pagewalk

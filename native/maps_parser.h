// The mappings (VMAs) of a process as plain records, for the walks that need
// ranges and file identities but no JavaScript object per mapping: the text
// of /proc/PID/maps parsed here, or for the shmem candidates alone the
// PROCMAP_QUERY ioctl (Linux 6.11+) where the kernel has it. lib/proc/maps.ts stays the parser of the
// mappings the API returns; this is the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pagewalk {

// Protection bits of MapRecord::flags (the r, w, x, s of /proc/PID/maps).
enum MapFlag : uint32_t { kMapRead = 1, kMapWrite = 2, kMapExec = 4, kMapShared = 8 };

struct MapRecord {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;  // file offset in bytes (0 for anonymous mappings)
  uint64_t inode = 0;
  uint32_t devMajor = 0;
  uint32_t devMinor = 0;
  uint32_t flags = 0;
};

enum class MapSelection {
  kAll,
  // Mappings of a file on device major 0 with an inode: the only ones that
  // may be shmem (tmpfs, MAP_SHARED anonymous, SysV shm, memfd).
  kShmemCandidates,
  // Every mapping of a file (an inode): the RAM census's open and mapped files.
  kFileBacked,
};

struct MapsReadOptions {
  MapSelection selection = MapSelection::kAll;
  // Try PROCMAP_QUERY first for the shmem candidates; false: always parse
  // the text (as before 6.11).
  bool useQuery = true;
};

// User-space mappings of pid in address order ([vsyscall], above user space,
// is left out: the caller counts the gate area itself). A process without
// an mm (kernel thread, zombie) or gone meanwhile has none. Throws
// SystemError when /proc/PID/maps cannot be opened.
std::vector<MapRecord> readMapRecords(int pid, MapsReadOptions options);
// The same through a descriptor of /proc/PID/maps already open (named path
// in errors), whose file position is still at its start.
std::vector<MapRecord> readMapRecords(int fd, const std::string& path, MapsReadOptions options);

}  // namespace pagewalk

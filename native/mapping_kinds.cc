// The target's mappings as the walk asks for them: PROCMAP_QUERY on
// /proc/PID/maps for the kind of a file page's mapping and for the shared
// file mappings whose frames other walks may share, and the mappings that
// may be shmem.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "maps_parser.h"
#include "page_size.h"
#include "process_walk.h"
#include "procmap_query.h"
#include "system_error.h"
#include "walk_internal.h"

namespace pagewalk {

// The device of the kernel's internal shmem mount, where MAP_SHARED
// anonymous memory, System V shared memory and memfds live: found from a
// memfd of our own. Files on it hold only swap-backed (shmem) pages.
namespace {

struct ShmemDevice {
  bool known = false;
  uint32_t major = 0, minor = 0;
};

const ShmemDevice& shmemDevice() {
  static const ShmemDevice dev = [] {
    ShmemDevice d;
    const int fd = ::memfd_create("pagewalk-shmem-device", MFD_CLOEXEC);
    if (fd < 0) return d;
    struct stat st;
    if (::fstat(fd, &st) == 0) {
      d.known = true;
      d.major = major(st.st_dev);
      d.minor = minor(st.st_dev);
    }
    ::close(fd);
    return d;
  }();
  return dev;
}

// The kind of the frames of a mapping, from its file (see queryFileKind()).
FrameKind mappingKind(const ProcmapQuery& q) {
  if (q.inode == 0) return kKindLookUp;
  if (q.dev_major != 0) return kKindFile;
  const ShmemDevice& shm = shmemDevice();
  return shm.known && q.dev_major == shm.major && q.dev_minor == shm.minor ? kKindShmem : kKindLookUp;
}

}  // namespace

// The kind of the frames of a page with pagemap bit 61 (file page or shared
// anonymous), from the kind of the mapping holding it: a file of a
// block-device filesystem holds page cache (never swap-backed); a file of
// the internal shmem mount holds shmem. Anything else (tmpfs mounts, FUSE,
// overlay, devices, or no PROCMAP_QUERY) is looked up (mappingKind()).
FrameKind ProcessWalk::queryFileKind(uint64_t page) {
  ProcmapQuery q;
  // ENOENT: nothing maps it any more; anything else: no PROCMAP_QUERY.
  if (queryMaps(page << kPageShift, 0, q) != 0) return kKindLookUp;
  const FrameKind kind = mappingKind(q);
  kindStart_ = q.vma_start >> kPageShift;
  kindEnd_ = q.vma_end >> kPageShift;
  kind_ = kind;
  if (page < kindStart_ || page >= kindEnd_) {
    kindStart_ = kindEnd_ = 0;
    return kKindLookUp;
  }
  return kind;
}

int ProcessWalk::queryMaps(uint64_t address, uint64_t flags, ProcmapQuery& q) {
  if (!openMaps()) return ENOTTY;
  q = ProcmapQuery{};
  q.size = sizeof(q);
  q.query_flags = flags;
  q.query_addr = address;
  int rc;
  do {
    rc = ::ioctl(mapsFd_, kProcmapQuery, &q);
  } while (rc < 0 && errno == EINTR);
  if (rc == 0) return 0;
  const int error = errno;
  if (error != ENOENT) mapsQueryUnsupported_ = true;
  return error;
}

// A shared mapping whose frames are its file's, named by their offset: page
// cache of a block-device filesystem, or the internal shmem mount's objects
// (mappingKind() knows their frames' kind). Not other files of no device
// (tmpfs mounts, FUSE, devices and their PFN maps): their offsets need not
// name one frame.
bool ProcessWalk::sharedVmaOf(const ProcmapQuery& q, SharedVma& vma) {
  if (!(q.vma_flags & kVmaShared) || mappingKind(q) == kKindLookUp) return false;
  vma.start = q.vma_start >> kPageShift;
  vma.end = q.vma_end >> kPageShift;
  vma.offset = q.vma_offset >> kPageShift;
  vma.file = FileKey{q.dev_major, q.dev_minor, q.inode};
  vma.kind = mappingKind(q);
  return true;
}

bool ProcessWalk::openMapsFile() {
  if (mapsFd_ >= 0) return true;
  const std::string path = "/proc/" + std::to_string(pid_) + "/maps";
  do {
    mapsFd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (mapsFd_ < 0 && errno == EINTR);
  return mapsFd_ >= 0;
}

bool ProcessWalk::openMaps() {
  if (mapsQueryUnsupported_) return false;
  if (!openMapsFile()) mapsQueryUnsupported_ = true;
  return !mapsQueryUnsupported_;
}

// Swapped shmem has no page table entry, so no walk can find it: the
// caller measures it mapping by mapping (cachestat), and needs the mappings
// that may be shmem. Read here, on the walk's thread and through the
// descriptor its own queries use, rather than by a call of their own that
// opened the maps again and waited for a pool thread of its own.
void ProcessWalk::readShmemMappings() {
  if (!options_.shmemMappings || mappings() == 0) return;
  const uint64_t began = monotonicNs();
  const std::string path = "/proc/" + std::to_string(pid_) + "/maps";
  if (!openMapsFile()) throw SystemError(errno, "open", path);
  MapsReadOptions o;
  o.selection = MapSelection::kShmemCandidates;
  o.useQuery = options_.procmapQuery;
  shmemMappings_ = readMapRecords(mapsFd_, path, o);
  timings_.mapsNs += monotonicNs() - began;
}

void ProcessWalk::closeMaps() {
  if (mapsFd_ >= 0) ::close(mapsFd_);
  mapsFd_ = -1;
  kindStart_ = kindEnd_ = 0;
}

}  // namespace pagewalk

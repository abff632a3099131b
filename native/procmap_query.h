// PROCMAP_QUERY (Linux 6.11+, include/uapi/linux/fs.h): the mapping covering
// (or following) an address, by ioctl on /proc/PID/maps, without its text.
// Declared here because the build machine's uapi headers may predate 6.11.
#pragma once

#include <sys/ioctl.h>

#include <cstdint>

namespace pagewalk {

struct ProcmapQuery {
  uint64_t size;
  uint64_t query_flags;
  uint64_t query_addr;
  uint64_t vma_start;
  uint64_t vma_end;
  uint64_t vma_flags;
  uint64_t vma_page_size;
  uint64_t vma_offset;
  uint64_t inode;
  uint32_t dev_major;
  uint32_t dev_minor;
  uint32_t vma_name_size;
  uint32_t build_id_size;
  uint64_t vma_name_addr;
  uint64_t build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
// query_flags (enum procmap_query_flags).
constexpr uint64_t kQueryVmaShared = 0x08;
constexpr uint64_t kQueryCoveringOrNext = 0x10;
constexpr uint64_t kQueryFileBacked = 0x20;
// vma_flags (enum procmap_vma_flags).
constexpr uint64_t kVmaShared = 0x08;

}  // namespace pagewalk

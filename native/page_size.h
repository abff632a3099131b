// The base page size, in one place for the whole addon. pagemap has one
// entry per base page, kpagecount and kpageflags one per frame of that
// size, and a PMD-mapped THP covers as many base pages as one page table
// holds entries. pagewalk is verified on 4 KiB pages only: the addon
// refuses to load where the kernel's page size (sysconf(_SC_PAGESIZE))
// differs (binding.cc, at load), rather than read every file at the wrong
// entries. lib/page.ts takes its PAGE from here.
#pragma once

#include <unistd.h>

#include <cstdint>

namespace pagewalk {

constexpr unsigned kPageShift = 12;
constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
// Base pages one PMD maps (PTRS_PER_PTE): a page table of 8-byte entries.
constexpr uint64_t kPmdPages = kPageSize / sizeof(uint64_t);

// The running kernel's page size, read once.
inline uint64_t kernelPageSize() {
  static const uint64_t size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace pagewalk

// The page size pagewalk works in. pagemap has one entry per base page, and
// Linux on x86-64 (the platform pagewalk supports) has 4 KiB base pages.

/** Bytes in a page. */
export const PAGE = 4096;
/** log2(PAGE), for bigint addresses. */
export const PAGE_SHIFT = 12n;

/**
 * Where the kernel's half of the address space starts. Mappings there (the
 * [vsyscall] gate area, not a vma) have no pagemap entries, and smaps_rollup
 * leaves them out.
 */
export const KERNEL_HALF = 1n << 63n;

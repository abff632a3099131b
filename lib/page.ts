// The page size pagewalk works in: the kernel's base page, one pagemap
// entry each. Its one home is the addon (native/page_size.h), which takes
// it from the kernel at load and refuses to load where it is not the size
// verified (4 KiB), rather than read every file at the wrong entries.
import { native } from './native';

/** Bytes in a page. */
export const PAGE: number = native.pageSize;
/** log2(PAGE), for bigint addresses. */
export const PAGE_SHIFT = BigInt(Math.log2(PAGE));

/**
 * Where the kernel's half of the address space starts. Mappings there (the
 * [vsyscall] gate area, not a vma) have no pagemap entries, and smaps_rollup
 * leaves them out.
 */
export const KERNEL_HALF = 1n << 63n;

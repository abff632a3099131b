// Which pages of a shared-memory mapping are in swap. Swapped-out shmem
// (MAP_SHARED anonymous, /dev/shm, SysV shm, memfd) leaves no swap entry in
// the page table: pagemap shows those pages as not present, while smaps
// counts them in Swap. cachestat(2) on the mapped file knows them; the page
// views (`pagewalk pages`, `picture`) mark them with this.
import { validatePid } from './errors';
import { native } from './native';
import { PAGE_SHIFT } from './page';
import { PM_PRESENT, PM_SWAPPED } from './pagemap';
import type { Mapping } from './proc/maps';
import type { WalkChunk } from './walk';

/** Whether a mapping may be shmem: tmpfs files and the kernel's shmem objects have device major 0 and an inode. */
export function mayBeShmem(mapping: Mapping): boolean {
  return mapping.deviceMajor === 0 && mapping.inode !== 0n;
}

/**
 * For pages [firstPage, firstPage + pages) of `mapping` in process `pid`
 * (page numbers from the mapping's start), a byte per page: 1 when the page
 * of the mapped shmem file behind it is in swap. null when the mapping is not
 * shmem, or the kernel has no cachestat (before 6.5). A page that is present
 * in the process is never in swap; a private mapping's copied pages hide the
 * file's: read the result beside pagemap (pages neither present nor swapped).
 * Errors carry the path of the mapping's /proc/PID/map_files entry.
 */
export function swappedShmemPages(pid: number, mapping: Mapping, firstPage = 0, pages?: number): Uint8Array | null {
  validatePid(pid);
  if (!mayBeShmem(mapping)) return null;
  const total = Number((mapping.end - mapping.start) >> PAGE_SHIFT);
  const count = pages ?? total - firstPage;
  if (!Number.isInteger(firstPage) || firstPage < 0 || firstPage > total)
    throw new RangeError(`firstPage must be a page of the mapping (0 to ${total}), got ${firstPage}`);
  if (!Number.isInteger(count) || count < 0 || firstPage + count > total)
    throw new RangeError(`pages must fit in the mapping (0 to ${total - firstPage}), got ${count}`);
  const out = new Uint8Array(count);
  const marked = native.shmemSwapMap(
    pid,
    Number(mapping.start >> PAGE_SHIFT),
    Number(mapping.end >> PAGE_SHIFT),
    Number(mapping.offset >> PAGE_SHIFT),
    firstPage,
    out,
  );
  return marked < 0 ? null : out;
}

/**
 * The pages of a walk() chunk that pagemap shows as neither present nor
 * swapped but whose shmem file page is in swap, as runs: [index, length,
 * index, length, ...], indexes from the chunk's first page. Empty when the
 * mapping is not shmem, nothing of it is in swap, or cachestat is missing.
 */
export function swappedShmemRuns(pid: number, chunk: WalkChunk): number[] {
  const runs: number[] = [];
  if (!mayBeShmem(chunk.mapping)) return runs;
  const first = Number((chunk.address - chunk.mapping.start) >> PAGE_SHIFT);
  const swapped = swappedShmemPages(pid, chunk.mapping, first, chunk.pages);
  if (!swapped) return runs;
  const entries = chunk.entries;
  for (let i = 0; i < chunk.pages; i++) {
    if (!swapped[i] || (entries && entries[i] & (PM_PRESENT | PM_SWAPPED))) continue;
    const last = runs.length - 2;
    if (last >= 0 && runs[last] + runs[last + 1] === i) runs[last + 1]++;
    else runs.push(i, 1);
  }
  return runs;
}

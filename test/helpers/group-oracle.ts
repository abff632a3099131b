// A slow, independent reference for group figures: plain fs reads of
// pagemap and kpagecount/kpageflags for every page of every member, and
// BigInt arithmetic. Only for small fixture families.
import { readMaps } from '../../lib/proc/maps';
import { readKpage, readPagemapPlain } from './oracle';

const PRESENT = 1n << 63n;
const PFN = (1n << 55n) - 1n;

export interface GroupTruth {
  onlyPages: number;
  sharedOutsidePages: number;
}

export function groupTruth(pids: number[], maxPagesPerMapping = 1 << 16): GroupTruth {
  const mappings = new Map<bigint, number>();
  for (const pid of pids) {
    for (const m of readMaps(pid)) {
      if (m.start >= 1n << 63n) continue;
      const pages = Math.min(m.size / 4096, maxPagesPerMapping);
      for (const e of readPagemapPlain(pid, m.start, pages)) {
        if (!(e & PRESENT)) continue;
        const pfn = e & PFN;
        mappings.set(pfn, (mappings.get(pfn) ?? 0) + 1);
      }
    }
  }
  let onlyPages = 0;
  let sharedOutsidePages = 0;
  for (const [pfn, inGroup] of mappings) {
    const flags = readKpage('kpageflags', pfn);
    const count = readKpage('kpagecount', pfn);
    // Not a normal page: zero page (24), no page (20), hugetlb (17), unmapped.
    if ((flags >> 24n) & 1n || (flags >> 20n) & 1n || (flags >> 17n) & 1n || count === 0n) continue;
    if (BigInt(inGroup) >= count) onlyPages++;
    else sharedOutsidePages++;
  }
  return { onlyPages, sharedOutsidePages };
}

// /proc/kpagecount and /proc/kpageflags: the kernel's per-page-frame facts,
// and the system-wide switches that decide how much of them a walk needs.
import * as fs from 'node:fs';
import { describe as describeValue } from './errors';
import { native } from './native';
import { type Meminfo, readMeminfo } from './proc/meminfo';
import { CAP_SYS_ADMIN, readStatus } from './proc/status';

/** kpageflags bits (include/uapi/linux/kernel-page-flags.h). */
export const KPF = {
  LOCKED: 0,
  ERROR: 1,
  REFERENCED: 2,
  UPTODATE: 3,
  DIRTY: 4,
  LRU: 5,
  ACTIVE: 6,
  SLAB: 7,
  WRITEBACK: 8,
  RECLAIM: 9,
  BUDDY: 10,
  MMAP: 11,
  ANON: 12,
  SWAPCACHE: 13,
  SWAPBACKED: 14,
  COMPOUND_HEAD: 15,
  COMPOUND_TAIL: 16,
  HUGE: 17,
  UNEVICTABLE: 18,
  HWPOISON: 19,
  NOPAGE: 20,
  KSM: 21,
  THP: 22,
  OFFLINE: 23,
  ZERO_PAGE: 24,
  IDLE: 25,
  PGTABLE: 26,
} as const;

export type KpageFlagName = keyof typeof KPF;

/** Names of the flags set in a kpageflags value. */
export function decodeKpageFlags(flags: bigint | number): KpageFlagName[] {
  const v = BigInt(flags);
  return (Object.keys(KPF) as KpageFlagName[]).filter((k) => (v >> BigInt(KPF[k])) & 1n);
}

export interface KpagePaths {
  kpagecount: string;
  kpageflags: string;
}

/**
 * Where the kpage files are. PAGEWALK_KPAGE_DIR points them elsewhere (a
 * directory without them), which is how tests force the unreadable path.
 */
export function kpagePaths(): KpagePaths {
  const dir = process.env.PAGEWALK_KPAGE_DIR ?? '/proc';
  return { kpagecount: `${dir}/kpagecount`, kpageflags: `${dir}/kpageflags` };
}

/** Whether this process may read /proc/kpagecount (root or CAP_SYS_ADMIN). */
export function kpageReadable(paths: KpagePaths = kpagePaths()): boolean {
  try {
    fs.accessSync(paths.kpagecount, fs.constants.R_OK);
    fs.accessSync(paths.kpageflags, fs.constants.R_OK);
    const fd = fs.openSync(paths.kpagecount, 'r');
    fs.closeSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Whether this process holds CAP_SYS_ADMIN, which makes pagemap show PFNs. */
export function hasSysAdmin(): boolean {
  try {
    return ((readStatus('self').capEff >> CAP_SYS_ADMIN) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * Where KSM's counters are. PAGEWALK_KSM_DIR points elsewhere (a directory
 * whose counters cannot be read), which is how tests force that path.
 */
function ksmDir(): string {
  return process.env.PAGEWALK_KSM_DIR ?? '/sys/kernel/mm/ksm';
}

/**
 * Whether KSM may have merged pages. When its counters cannot be read (a
 * container's masked /sys, a changed layout) the answer is unknown, and
 * unknown counts as yes, as it does for meminfo below: slower, never wrong.
 */
function ksmMayHaveMerged(): boolean {
  for (const counter of ['pages_shared', 'pages_sharing']) {
    let text: string;
    try {
      text = fs.readFileSync(`${ksmDir()}/${counter}`, 'utf8').trim();
    } catch {
      return true;
    }
    if (!/^\d+$/.test(text) || Number(text) > 0) return true;
  }
  return false;
}

export interface PageFeatures {
  /** KSM has merged pages, or its counters are unreadable: exclusive anonymous pages may be KSM pages. */
  ksmActive: boolean;
  /** hugetlb pages exist: present pages may be hugetlb, which smaps leaves out of Rss. */
  hugetlbInUse: boolean;
  /** Some THP is PMD-mapped somewhere: AnonHugePages needs a HUGE scan. */
  thpInUse: boolean;
}

/** The system-wide facts that decide which lookups a walk can skip. */
export function pageFeatures(): PageFeatures {
  let meminfo: Meminfo;
  try {
    meminfo = readMeminfo();
  } catch {
    // Without meminfo assume everything is in use: slower, never wrong.
    return { ksmActive: true, hugetlbInUse: true, thpInUse: true };
  }
  return {
    ksmActive: ksmMayHaveMerged(),
    hugetlbInUse: (meminfo.HugePages_Total ?? 0) > 0 || (meminfo.Hugetlb ?? 0) > 0,
    thpInUse: (meminfo.AnonHugePages ?? 0) > 0 || (meminfo.ShmemPmdMapped ?? 0) > 0 || (meminfo.FilePmdMapped ?? 0) > 0,
  };
}

export interface KpageInfo {
  /** Mapcount of each PFN (kpagecount); 0 for frames without a page. */
  mapcount: Uint32Array;
  /** kpageflags of each PFN (bits 0-31; see KPF). NOPAGE for frames beyond RAM. */
  flags: Uint32Array;
}

function lookupBuffers(pfns: BigUint64Array): KpageInfo {
  if (!(pfns instanceof BigUint64Array))
    throw new TypeError(`pfns must be a BigUint64Array, got ${describeValue(pfns)}`);
  return { mapcount: new Uint32Array(pfns.length), flags: new Uint32Array(pfns.length) };
}

/**
 * kpagecount and kpageflags of each PFN, deduplicated and read in coalesced
 * runs (never one read per PFN). Needs root or CAP_SYS_ADMIN.
 */
export function lookupKpages(pfns: BigUint64Array): KpageInfo {
  const out = lookupBuffers(pfns);
  const p = kpagePaths();
  native.kpageLookup(p.kpagecount, p.kpageflags, pfns, out.mapcount, out.flags, false);
  return out;
}

/** lookupKpages() on the thread pool. */
export async function lookupKpagesAsync(pfns: BigUint64Array): Promise<KpageInfo> {
  const out = lookupBuffers(pfns);
  const p = kpagePaths();
  await native.kpageLookup(p.kpagecount, p.kpageflags, pfns.slice(), out.mapcount, out.flags, true);
  return out;
}

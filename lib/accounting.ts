// Exact memory figures from pagemap and the per-page mapcount, following the
// kernel's own smaps rules (fs/proc/task_mmu.c): the same fixed-point PSS
// (PSS_SHIFT = 12), the same pages skipped (zero page, PFN holes, hugetlb),
// plus swapped-out shared memory, which pagemap cannot see.
import * as fs from 'node:fs';
import { describe, systemError, validatePid } from './errors';
import { kpagePaths, kpageReadable, type PageFeatures, pageFeatures } from './kpage';
import {
  MappingField,
  type NativeTally,
  type NativeWalk,
  native,
  TallyTiming,
  WALK_COLLECT_SWAP,
  WALK_LOOKUP_EXCLUSIVE_ANON,
  WALK_NO_SCAN,
  type WalkStats,
  WalkTiming,
  walkStats,
} from './native';
import { PAGE, PAGE_SHIFT } from './page';
import { openPagemap, type PagemapHandle, ScanCategory, scanDisabled } from './pagemap';
import { type Mapping, readMapsAsync } from './proc/maps';
import { readSmaps, readSmapsRollupAsync, type SmapsFields } from './proc/smaps';
import { readStat } from './proc/stat';

/** The kernel's PSS fixed point: PSS is summed as bytes << 12. */
export const PSS_SHIFT = 12n;

export interface PageCounts {
  /** Pages counted in Rss. */
  resident: number;
  /** Resident pages mapped once (mapcount < 2). */
  private: number;
  /** Resident pages mapped more than once. */
  shared: number;
  /** Pages whose page-table entry is a swap entry. */
  swapped: number;
  /** Every present page-table entry, zero page and device pages included. */
  present: number;
  /** Present entries that map the shared zero page (not in Rss). */
  zero: number;
  /** Present hugetlb pages (smaps reports them apart, never in Rss). */
  hugetlb: number;
  /** Present pages whose PFN could not be looked up (hidden PFNs). */
  unresolved: number;
}

/** Sizes in bytes. */
export interface MemoryFigures {
  /** Mapped address space. */
  vss: number;
  /** Resident, shared pages counted in full. */
  rss: number;
  /** Proportional: each page divided by its mapcount, as the kernel sums it. */
  pss: number;
  /** Unique: pages mapped by this process alone (Private_Clean + Private_Dirty). */
  uss: number;
  /** Resident pages also mapped elsewhere (Shared_Clean + Shared_Dirty). */
  shared: number;
  /** Swapped out, including swapped shared memory (smaps Swap). */
  swap: number;
  /** Swap PTEs divided among the scanned processes that share each slot: approximate (see README). */
  swapPss: number;
  pssAnon: number;
  pssFile: number;
  pssShmem: number;
  /** Anonymous resident memory (smaps Anonymous). */
  anonymous: number;
  ksm: number;
  anonHugePages: number;
  /** PSS in the kernel's fixed point (bytes << 12), for exact sums. */
  pssFixed: bigint;
  /** pssAnon, pssFile, pssShmem and swapPss in the same fixed point. */
  pssAnonFixed: bigint;
  pssFileFixed: bigint;
  pssShmemFixed: bigint;
  swapPssFixed: bigint;
  pages: PageCounts;
}

export interface MappingMemory extends MemoryFigures {
  mapping: Mapping;
}

export type FigureSource = 'pagemap' | 'smaps_rollup';

/**
 * Where a measurement's time went, in milliseconds. The per-process phases
 * (maps to thp) are summed over every process measured: in a snapshot the
 * walks run side by side, so they can add up to more than `walks`, the wall
 * time of that phase.
 */
export interface Timings {
  /** Listing processes and reading their stat, status and cmdline (snapshot only). */
  list: number;
  /** Opening pagemap, reading and parsing /proc/PID/maps, identity checks. */
  maps: number;
  /** pread of pagemap entries. */
  pagemap: number;
  /** PAGEMAP_SCAN for the populated stretches of sparse mappings. */
  scan: number;
  /** Classifying the entries read (exclusive anonymous, swap, pending PFNs). */
  classify: number;
  /** Swapped shared memory (cachestat over shmem mappings). */
  shmemSwap: number;
  /** PMD-mapped anonymous THP (PAGEMAP_SCAN or smaps). */
  thp: number;
  /** kpagecount and kpageflags lookups of the distinct pending frames. */
  kpage: number;
  /** Settling pending pages into figures, SwapPss included. */
  settle: number;
  /** Figures into reports, identity re-check, smaps_rollup fallbacks, groups. */
  shape: number;
  /** Wall time of the per-process phase (open, maps, walk, shmem swap, THP). */
  walks: number;
  total: number;
}

export function emptyTimings(): Timings {
  return {
    list: 0,
    maps: 0,
    pagemap: 0,
    scan: 0,
    classify: 0,
    shmemSwap: 0,
    thp: 0,
    kpage: 0,
    settle: 0,
    shape: 0,
    walks: 0,
    total: 0,
  };
}

/** Adds the walk's own native timings (its threads' time) into t. */
export function addWalkTimings(t: Timings, walk: NativeWalk): void {
  const w = new Float64Array(native.walkTimingFields);
  walk.timings(w);
  t.pagemap += w[WalkTiming.PagemapMs];
  t.scan += w[WalkTiming.ScanMs];
  t.thp += w[WalkTiming.ThpMs];
  t.classify += w[WalkTiming.ClassifyMs];
}

/** Adds a tally's lookup and settling time into t. */
export function addTallyTimings(t: Timings, tally: NativeTally): void {
  const w = new Float64Array(native.tallyTimingFields);
  tally.timings(w);
  t.kpage += w[TallyTiming.KpageMs];
  t.settle += w[TallyTiming.SettleMs];
}

/** Sums the per-process phases of b into a. */
export function addProcessTimings(a: Timings, b: Timings): void {
  for (const k of ['maps', 'pagemap', 'scan', 'classify', 'shmemSwap', 'thp'] as const) a[k] += b[k];
}

/**
 * 'excluded': the calling process's own mappings were taken off every
 * page's mapcount, so the figures are those the process will have once the
 * caller has exited. 'included': the kernel's view of the moment, in which
 * the caller's mappings count (pages it shares with the process count as
 * shared and give the process a smaller PSS).
 */
export type ObserverView = 'excluded' | 'included';

export interface ProcessMemory extends MemoryFigures {
  pid: number;
  /**
   * 'pagemap': computed here from pagemap and kpagecount, kernel-exact.
   * 'smaps_rollup': PFNs or kpagecount were out of reach (no CAP_SYS_ADMIN),
   * so Rss, Pss, Uss and the Pss split come from the kernel's smaps_rollup.
   */
  source: FigureSource;
  /** Whether the caller's own mappings count in these figures (see `excludeSelf`). */
  observer: ObserverView;
  pfnsVisible: boolean;
  /** Per mapping, when requested. */
  mappings?: MappingMemory[];
  /** Set when the process changed during the walk (exec, unmap): figures may mix states. */
  partial: boolean;
  /** Where the time went (ms). In a snapshot, each process's own phases; the snapshot has the whole. */
  timings: Timings;
}

export interface AccountingOptions {
  /** Include per-mapping figures. */
  mappings?: boolean;
  /**
   * Without CAP_SYS_ADMIN: 'smaps' (default) takes PSS from smaps_rollup
   * and marks the source; 'error' throws an EPERM error instead.
   */
  unprivileged?: 'smaps' | 'error';
  /**
   * Figures as they will be once the calling process has gone: every page
   * frame the caller maps itself has its mapcount lowered by the number of
   * times the caller maps it (read from the caller's own pagemap). The
   * caller's own figures, if asked for, stay the kernel's. Needs
   * CAP_SYS_ADMIN; without it figures come from smaps_rollup and say
   * `observer: 'included'`. Default false: the kernel's view of the moment.
   */
  excludeSelf?: boolean;
}

/** Kernel-half mappings ([vsyscall]) have no pagemap entries. */
const USER_SPACE_END = 1n << 63n;

function emptyPages(): PageCounts {
  return { resident: 0, private: 0, shared: 0, swapped: 0, present: 0, zero: 0, hugetlb: 0, unresolved: 0 };
}

export function emptyFigures(): MemoryFigures {
  return {
    vss: 0,
    rss: 0,
    pss: 0,
    uss: 0,
    shared: 0,
    swap: 0,
    swapPss: 0,
    pssAnon: 0,
    pssFile: 0,
    pssShmem: 0,
    anonymous: 0,
    ksm: 0,
    anonHugePages: 0,
    pssFixed: 0n,
    pssAnonFixed: 0n,
    pssFileFixed: 0n,
    pssShmemFixed: 0n,
    swapPssFixed: 0n,
    pages: emptyPages(),
  };
}

/** Bytes from a fixed-point PSS sum, truncated the way the kernel truncates. */
export function pssBytes(fixed: bigint): number {
  return Number(fixed >> PSS_SHIFT);
}

/** The figures summed as bytes. */
const BYTE_FIGURES = ['vss', 'rss', 'uss', 'shared', 'swap', 'anonymous', 'ksm', 'anonHugePages'] as const;

/**
 * The figures summed in the kernel's fixed point and truncated to bytes
 * only at the end, as smaps_rollup sums them: each with its fixed-point twin.
 */
const FIXED_FIGURES = [
  ['pss', 'pssFixed'],
  ['pssAnon', 'pssAnonFixed'],
  ['pssFile', 'pssFileFixed'],
  ['pssShmem', 'pssShmemFixed'],
  ['swapPss', 'swapPssFixed'],
] as const;

/**
 * Adds b into a (in place): every figure, the proportional ones in fixed
 * point. Mappings into a process, processes into a group: one arithmetic.
 */
export function addFigures(a: MemoryFigures, b: MemoryFigures): MemoryFigures {
  for (const k of BYTE_FIGURES) a[k] += b[k];
  for (const [bytes, fixed] of FIXED_FIGURES) {
    a[fixed] += b[fixed];
    a[bytes] = pssBytes(a[fixed]);
  }
  for (const k of Object.keys(a.pages) as (keyof PageCounts)[]) a.pages[k] += b.pages[k];
  return a;
}

// ------------------------------------------------------------------ targets

/** One process being measured: its maps, native walk and extras. */
export interface Target {
  pid: number;
  maps: Mapping[];
  /** Indices into maps of the mappings walked (user space only). */
  walked: number[];
  walk: NativeWalk;
  /** Swapped shmem pages per walked mapping; null: unknown (no privilege). */
  shmemSwap: (number | null)[];
  /** AnonHugePages bytes per walked mapping; a missing entry means the walk's own figure. */
  anonHuge: number[];
  /** Time of this process's own phases (maps to thp). */
  timings: Timings;
  identity: string;
  partial: boolean;
  /**
   * /proc/PID/pagemap opened before the maps were read: the descriptor pins
   * the address space (mm) the maps describe. Once the process execs or
   * exits, reads through it come back empty, which no start-time or exe
   * comparison can see when a program execs itself. Null for processes
   * without an mm (kernel threads, zombies). Closed by mmSurvived().
   */
  sentinel: PagemapHandle | null;
}

/** Start time and exe of a pid: changes when the pid is reused or execs. */
export function processIdentity(pid: number): string {
  const { startTime } = readStat(pid);
  let exe = '';
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // kernel threads and zombies have no exe
  }
  return `${startTime}:${exe}`;
}

export function walkFlags(features: PageFeatures): number {
  let flags = WALK_COLLECT_SWAP;
  if (features.ksmActive || features.hugetlbInUse) flags |= WALK_LOOKUP_EXCLUSIVE_ANON;
  if (scanDisabled()) flags |= WALK_NO_SCAN;
  return flags;
}

export async function prepareTarget(pid: number, flags: number): Promise<Target> {
  let sentinel: PagemapHandle | null = null;
  try {
    sentinel = openPagemap(pid);
  } catch (err) {
    // ESRCH: no mm (kernel thread, zombie); its maps read empty below, or
    // the process is gone and the reads below say so.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  try {
    return await prepareWithSentinel(pid, flags, sentinel);
  } catch (err) {
    sentinel?.close();
    throw err;
  }
}

async function prepareWithSentinel(pid: number, flags: number, sentinel: PagemapHandle | null): Promise<Target> {
  const began = performance.now();
  const identity = processIdentity(pid);
  const maps = await readMapsAsync(pid);
  const walked: number[] = [];
  for (let i = 0; i < maps.length; i++)
    if (maps[i].start < USER_SPACE_END && maps[i].end > maps[i].start) walked.push(i);
  const ranges = new Float64Array(walked.length * 2);
  walked.forEach((mi, k) => {
    ranges[2 * k] = Number(maps[mi].start >> PAGE_SHIFT);
    ranges[2 * k + 1] = Number(maps[mi].end >> PAGE_SHIFT);
  });
  const walk = new native.Walk(pid, ranges, flags);
  const timings = emptyTimings();
  timings.maps = performance.now() - began;
  return { pid, maps, walked, walk, shmemSwap: [], anonHuge: [], timings, identity, partial: false, sentinel };
}

/** Walks a prepared target: pagemap, then shmem swap and THP, each timed. */
export async function walkTarget(t: Target, features: PageFeatures): Promise<void> {
  await t.walk.runAsync();
  addWalkTimings(t.timings, t.walk);
  const walked = performance.now();
  measureShmemSwap(t);
  const swapDone = performance.now();
  t.timings.shmemSwap += swapDone - walked;
  measureAnonHuge(t, features);
  t.timings.thp += performance.now() - swapDone;
}

/**
 * Whether the address space walked is still the one whose maps were read
 * (no exec, no exit since prepareTarget). Closes the sentinel.
 */
export function mmSurvived(t: Target): boolean {
  const s = t.sentinel;
  if (!s) return true;
  t.sentinel = null;
  try {
    s.read(0, 1);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  } finally {
    s.close();
  }
}

/** Releases what a target holds besides memory (its sentinel descriptor). */
export function releaseTarget(t: Target): void {
  t.sentinel?.close();
  t.sentinel = null;
}

/**
 * Whether a pid names a live (not zombie) process, so that an ESRCH from its
 * pagemap means it exec'd rather than exited.
 */
export function stillRunning(pid: number): boolean {
  try {
    const { state } = readStat(pid);
    return state !== 'Z' && state !== 'X' && state !== 'x';
  } catch {
    return false;
  }
}

const SHMEM_NOT = -1;
const SHMEM_NO_CACHESTAT = -2;

/**
 * Swapped shared memory for each mapping that may be shmem (device major 0
 * with an inode: tmpfs, /dev/zero MAP_SHARED, SysV shm, memfd). Rules of
 * smap_gather_stats(): whole shmem swap for shared or read-only mappings,
 * only what sits behind page-table holes for private writable ones.
 */
export function measureShmemSwap(t: Target): void {
  t.shmemSwap = t.walked.map((mi) => {
    const m = t.maps[mi];
    if (m.deviceMajor !== 0 || m.inode === 0n) return 0;
    const startPage = Number(m.start >> PAGE_SHIFT);
    const endPage = Number(m.end >> PAGE_SHIFT);
    const offsetPages = Number(m.offset >> PAGE_SHIFT);
    try {
      const swapped = native.shmemSwap(t.pid, startPage, endPage, offsetPages, false);
      if (swapped === SHMEM_NOT) return 0;
      if (swapped === SHMEM_NO_CACHESTAT) return null;
      if (swapped > 0 && !m.shared && m.write) return native.shmemSwap(t.pid, startPage, endPage, offsetPages, true);
      return swapped;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        t.partial = true; // unmapped meanwhile
        return 0;
      }
      if (code === 'EPERM' || code === 'EACCES') return null;
      throw err;
    }
  });
}

/** PMD-mapped anonymous THP per mapping (smaps AnonHugePages), via PAGEMAP_SCAN. */
export function measureAnonHuge(t: Target, features: PageFeatures): void {
  t.anonHuge = t.walked.map(() => 0);
  if (!features.thpInUse || t.walked.length === 0) return;
  if (scanDisabled()) {
    anonHugeFromSmaps(t);
    return;
  }
  // The walk itself scanned, on the thread pool, the 2 MiB stretches whose
  // PFNs could form a THP: exact whenever it saw PFNs and PAGEMAP_SCAN works.
  // Left empty, shapeProcess() takes the walk's own AnonHugePages field.
  const s = walkStats(t.walk);
  if (!s.scanUnsupported && s.pfnsVisible && !s.sawHiddenPfn) {
    t.anonHuge = [];
    return;
  }
  const handle = openPagemap(t.pid);
  let supported = true;
  try {
    t.walked.forEach((mi, k) => {
      const m = t.maps[mi];
      if (!supported || m.size < 2 * 1024 * 1024) return;
      const r = handle.scan(m.start, m.end, {
        require: ScanCategory.HUGE | ScanCategory.PRESENT | ScanCategory.FILE | ScanCategory.PFNZERO,
        inverted: ScanCategory.FILE | ScanCategory.PFNZERO,
        anyOf: 0,
        report: ScanCategory.HUGE,
      });
      supported = r.supported;
      for (const reg of r.regions) t.anonHuge[k] += Number(reg.end - reg.start);
    });
  } finally {
    handle.close();
  }
  if (!supported) anonHugeFromSmaps(t);
}

/**
 * Without PAGEMAP_SCAN (before 6.7) pagemap cannot tell a PMD-mapped THP
 * from 512 small pages: take AnonHugePages per mapping from smaps, the
 * kernel's own figure. A mapping gone meanwhile marks the report partial.
 */
function anonHugeFromSmaps(t: Target): void {
  const byStart = new Map<bigint, number>();
  for (const e of readSmaps(t.pid)) byStart.set(e.start, (e.fields.AnonHugePages ?? 0) * 1024);
  t.walked.forEach((mi, k) => {
    const m = t.maps[mi];
    if (m.size < 2 * 1024 * 1024) return;
    const v = byStart.get(m.start);
    if (v === undefined) t.partial = true;
    else t.anonHuge[k] = v;
  });
}

// ------------------------------------------------------------------ shaping

const mappingFields = native.mappingFields;

function figuresOf(
  data: BigUint64Array,
  k: number,
  m: Mapping,
  shmemSwapPages: number,
  anonHuge: number,
): MemoryFigures {
  const o = k * mappingFields;
  const n = (f: MappingField) => Number(data[o + f]);
  const fixed = (f: MappingField) => data[o + f];
  const pages: PageCounts = {
    resident: n(MappingField.RssPages),
    private: n(MappingField.PrivatePages),
    shared: n(MappingField.SharedPages),
    swapped: n(MappingField.SwapPages),
    present: n(MappingField.PresentPages),
    zero: n(MappingField.ZeroPages),
    hugetlb: n(MappingField.HugetlbPages),
    unresolved: n(MappingField.UnresolvedPages),
  };
  const fig: MemoryFigures = {
    vss: m.size,
    rss: pages.resident * PAGE,
    pss: pssBytes(fixed(MappingField.PssFixed)),
    uss: pages.private * PAGE,
    shared: pages.shared * PAGE,
    swap: (pages.swapped + shmemSwapPages) * PAGE,
    swapPss: pssBytes(fixed(MappingField.SwapPssFixed)),
    pssAnon: pssBytes(fixed(MappingField.PssAnonFixed)),
    pssFile: pssBytes(fixed(MappingField.PssFileFixed)),
    pssShmem: pssBytes(fixed(MappingField.PssShmemFixed)),
    anonymous: n(MappingField.AnonymousPages) * PAGE,
    ksm: n(MappingField.KsmPages) * PAGE,
    anonHugePages: anonHuge,
    pssFixed: fixed(MappingField.PssFixed),
    pssAnonFixed: fixed(MappingField.PssAnonFixed),
    pssFileFixed: fixed(MappingField.PssFileFixed),
    pssShmemFixed: fixed(MappingField.PssShmemFixed),
    swapPssFixed: fixed(MappingField.SwapPssFixed),
    pages,
  };
  return fig;
}

/** Per-process figures from a settled walk (PSS summed before truncation, as smaps_rollup does). */
export function shapeProcess(t: Target, options: AccountingOptions, pfnsVisible: boolean): ProcessMemory {
  const data = new BigUint64Array(t.walked.length * mappingFields);
  t.walk.figures(data);
  const total: ProcessMemory = {
    ...emptyFigures(),
    pid: t.pid,
    source: 'pagemap',
    observer: 'included',
    pfnsVisible,
    partial: t.partial,
    timings: t.timings,
  };
  const perMapping: MappingMemory[] = [];
  // Unwalked mappings ([vsyscall]) still count in VSS.
  const walked = new Set(t.walked);
  t.maps.forEach((m, i) => {
    if (!walked.has(i)) total.vss += m.size;
  });
  t.walked.forEach((mi, k) => {
    const anonHuge = t.anonHuge[k] ?? Number(data[k * mappingFields + MappingField.AnonHugePages]) * PAGE;
    const fig = figuresOf(data, k, t.maps[mi], t.shmemSwap[k] ?? 0, anonHuge);
    addFigures(total, fig);
    if (options.mappings) perMapping.push({ mapping: t.maps[mi], ...fig });
  });
  if (options.mappings) total.mappings = perMapping;
  return total;
}

/** Figures from the kernel's smaps_rollup, for callers without the privilege to compute them. */
export function figuresFromRollup(fields: SmapsFields): Omit<MemoryFigures, 'vss' | 'pages'> {
  const kb = (k: string) => (fields[k] ?? 0) * 1024;
  return {
    rss: kb('Rss'),
    pss: kb('Pss'),
    uss: kb('Private_Clean') + kb('Private_Dirty'),
    shared: kb('Shared_Clean') + kb('Shared_Dirty'),
    swap: kb('Swap'),
    swapPss: kb('SwapPss'),
    pssAnon: kb('Pss_Anon'),
    pssFile: kb('Pss_File'),
    pssShmem: kb('Pss_Shmem'),
    anonymous: kb('Anonymous'),
    ksm: kb('KSM'),
    anonHugePages: kb('AnonHugePages'),
    pssFixed: BigInt(kb('Pss')) << PSS_SHIFT,
    pssAnonFixed: BigInt(kb('Pss_Anon')) << PSS_SHIFT,
    pssFileFixed: BigInt(kb('Pss_File')) << PSS_SHIFT,
    pssShmemFixed: BigInt(kb('Pss_Shmem')) << PSS_SHIFT,
    swapPssFixed: BigInt(kb('SwapPss')) << PSS_SHIFT,
  };
}

export function unprivilegedError(pid: number, why: string): NodeJS.ErrnoException {
  return systemError(
    'EPERM',
    -1,
    'read',
    `/proc/${pid}/pagemap`,
    `exact PSS needs CAP_SYS_ADMIN (run as root): ${why}`,
  );
}

/** Why exact figures are out of reach for these walks, or null when they are not. */
export function privilegeGap(stats: WalkStats[], kpageOk: boolean): string | null {
  const hidden = stats.some((s) => s.sawHiddenPfn && !s.pfnsVisible);
  if (hidden) return 'PFNs in pagemap are hidden';
  const pending = stats.some((s) => s.pendingPfns > 0);
  if (pending && !kpageOk) return '/proc/kpagecount is not readable';
  return null;
}

/** Replaces computed figures with smaps_rollup's where they cannot be exact. */
export async function degradeToRollup(report: ProcessMemory): Promise<void> {
  const rollup = await readSmapsRollupAsync(report.pid);
  Object.assign(report, figuresFromRollup(rollup.fields));
  report.source = 'smaps_rollup';
  report.observer = 'included';
  report.pfnsVisible = false;
  // Per-mapping figures would mix sources: drop them rather than mislead.
  delete report.mappings;
}

/**
 * The frames the calling process maps that another process may map too, one
 * entry per virtual page (a frame mapped twice is listed twice), from the
 * caller's own pagemap. Exclusive anonymous pages are left out: their
 * mapcount is 1, so no other process maps them. Null when PFNs are hidden.
 */
export async function observerPfns(flags: number): Promise<BigUint64Array | null> {
  const self = await prepareTarget(process.pid, flags);
  try {
    await self.walk.runAsync();
  } finally {
    releaseTarget(self);
  }
  const s = walkStats(self.walk);
  if (s.sawHiddenPfn && !s.pfnsVisible) return null;
  const pfns = new BigUint64Array(s.pendingPfns);
  self.walk.pendingPfns(pfns);
  return pfns;
}

/**
 * Tells the tally to settle without the caller's mappings. observerWalk: the
 * index of the caller's own walk in the tally, or -1. False when the caller's
 * PFNs are hidden (figures then stay the kernel's view).
 */
export async function excludeObserver(tally: NativeTally, flags: number, observerWalk: number): Promise<boolean> {
  const pfns = await observerPfns(flags);
  if (!pfns) return false;
  tally.excludeObserver(pfns, observerWalk);
  return true;
}

export function newTally(): NativeTally {
  const p = kpagePaths();
  return new native.Tally(p.kpagecount, p.kpageflags);
}

/**
 * Exact memory figures of one process, equal to its smaps_rollup to the kB
 * (Rss, Pss, Pss_Anon, Pss_File, Pss_Shmem, Swap, Anonymous, KSM) when run
 * with CAP_SYS_ADMIN, and computed in a single pass over pagemap.
 */
export async function processMemory(pid: number, options: AccountingOptions = {}): Promise<ProcessMemory> {
  validatePid(pid);
  checkAccountingOptions(options);
  const began = performance.now();
  const timings = emptyTimings();
  const features = pageFeatures();
  // A process that execs while it is walked makes the walk fail (ESRCH) or
  // read an address space its maps do not describe: measure it again.
  let t: Target;
  for (let attempt = 1; ; attempt++) {
    t = await prepareTarget(pid, walkFlags(features));
    try {
      await walkTarget(t, features);
    } catch (err) {
      releaseTarget(t);
      if ((err as NodeJS.ErrnoException).code === 'ESRCH' && attempt < 3 && stillRunning(pid)) continue;
      throw err;
    } finally {
      addProcessTimings(timings, t.timings);
    }
    if (mmSurvived(t)) break;
    // Exec'd (or exited) after its maps were read: the figures may mix two
    // address spaces. Try again while it keeps running, else say so.
    if (attempt >= 3 || !stillRunning(pid)) {
      t.partial = true;
      break;
    }
  }
  const stats = walkStats(t.walk);
  const kpageOk = stats.pendingPfns === 0 || kpageReadable();
  const gap = privilegeGap([stats], kpageOk);
  if (gap && options.unprivileged === 'error') throw unprivilegedError(pid, gap);
  const tally = newTally();
  tally.add(t.walk);
  // The caller's own figures stay the kernel's: it is not gone while it measures itself.
  let excluded = false;
  if (!gap && options.excludeSelf && pid !== process.pid)
    excluded = await excludeObserver(tally, walkFlags(features), -1);
  if (!gap) await tally.resolveAsync();
  tally.approximateSwapPss();
  addTallyTimings(timings, tally);
  const shaping = performance.now();
  timings.walks = shaping - began - timings.kpage - timings.settle;
  if (processIdentity(pid) !== t.identity) t.partial = true;
  const report = shapeProcess(t, options, !gap);
  if (excluded) report.observer = 'excluded';
  if (gap || t.shmemSwap.includes(null)) {
    if (gap) await degradeToRollup(report);
    else report.swap = figuresFromRollup((await readSmapsRollupAsync(pid)).fields).swap;
  }
  const end = performance.now();
  timings.shape = end - shaping;
  timings.total = end - began;
  report.timings = timings;
  return report;
}

export function checkAccountingOptions(options: AccountingOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.unprivileged !== undefined && options.unprivileged !== 'smaps' && options.unprivileged !== 'error') {
    throw new RangeError("options.unprivileged must be 'smaps' or 'error'");
  }
  if (options.excludeSelf !== undefined && typeof options.excludeSelf !== 'boolean')
    throw new TypeError(`options.excludeSelf must be a boolean, got ${describe(options.excludeSelf)}`);
}

// Exact memory figures from pagemap and the per-page mapcount, following the
// kernel's own smaps rules (fs/proc/task_mmu.c): the same fixed-point PSS
// (PSS_SHIFT = 12), the same pages skipped (zero page, PFN holes, hugetlb),
// plus swapped-out shared memory, which pagemap cannot see.
import { describe } from './errors';
import { MappingField, type NativeTally, type NativeWalk, native, TallyTiming, WalkTiming } from './native';
import { PAGE } from './page';
import type { Target } from './pipeline';
import type { Mapping } from './proc/maps';
import type { SmapsFields } from './proc/smaps';

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
  /**
   * Opening pagemap, identity checks, reading the mappings (/proc/PID/maps,
   * or PROCMAP_QUERY for the shmem candidates while swap is in use, which
   * the walk reads on its own thread as it starts).
   */
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
  /** Pauses between pagemap calls that let a running process take its mmap lock (`lockPauses`). */
  paused: number;
  /**
   * Pagemap calls of a running process made at normal priority because the
   * kernel refused to raise the walking thread to SCHED_FIFO between pauses
   * (no CAP_SYS_NICE and RLIMIT_RTPRIO 0, or a cgroup without real-time
   * time): 0 when every such call ran raised, or none was paced.
   */
  unraised: number;
  /** kpagecount and kpageflags lookups of the distinct pending frames (with excludeSelf, the reads of the caller's own pagemap around them too). */
  kpage: number;
  /** Settling pending pages into figures, SwapPss included. */
  settle: number;
  /** Figures into reports, identity re-check, smaps_rollup fallbacks, groups. */
  shape: number;
  /** Wall time of the per-process phase (open, maps, walk, shmem swap, THP). */
  walks: number;
  total: number;
  /**
   * CPU time of the call: each walk thread's, lookup thread's and settling
   * thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`; both threads of a split
   * walk and every concurrent walk together), plus the calling thread's CPU
   * time from the call's start to its end. JavaScript the calling thread runs
   * for other work while the call awaits counts too; other libuv pool work
   * (async smaps_rollup fallback reads) does not.
   */
  cpu: number;
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
    paused: 0,
    unraised: 0,
    kpage: 0,
    settle: 0,
    shape: 0,
    walks: 0,
    total: 0,
    cpu: 0,
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
  t.paused += w[WalkTiming.PausedMs];
  t.maps += w[WalkTiming.MapsMs];
  t.unraised += w[WalkTiming.UnraisedMs];
  t.cpu += w[WalkTiming.CpuMs];
}

/** Adds a tally's lookup and settling time into t. */
export function addTallyTimings(t: Timings, tally: NativeTally): void {
  const w = new Float64Array(native.tallyTimingFields);
  tally.timings(w);
  t.kpage += w[TallyTiming.KpageMs];
  t.settle += w[TallyTiming.SettleMs];
  t.cpu += w[TallyTiming.CpuMs];
}

/** The calling thread's CPU time in ms: taken at a call's start and end, its share of `Timings.cpu`. */
export function callerCpuMs(): number {
  return native.threadCpuMs();
}

/** Sums the per-process phases of b into a. */
export function addProcessTimings(a: Timings, b: Timings): void {
  for (const k of ['maps', 'pagemap', 'scan', 'classify', 'shmemSwap', 'thp', 'paused', 'unraised', 'cpu'] as const)
    a[k] += b[k];
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
  /**
   * Pauses that keep a running process measured from stalling. Every
   * pagemap read and PAGEMAP_SCAN holds the process's mmap lock, and the
   * kernel lets a reader that takes it again at once go ahead of a thread of
   * the process waiting to write it (mmap, munmap, mprotect, brk) for a few
   * ms. So while the process runs (any thread not stopped), the walk pauses
   * `pauseMicros` each time its calls have taken `holdMicros`, reads at most
   * 4 MiB of address space per call, and uses one thread. A stopped process
   * cannot take the lock and is walked without pauses. `false`: never
   * pause. Default: `DEFAULT_LOCK_PAUSES`; docs/performance.md has the trade.
   */
  lockPauses?: LockPauses | false;
}

export interface LockPauses {
  /** Call time between pauses, in microseconds (1 to 1,000,000). */
  holdMicros?: number;
  /** Length of each pause, in microseconds (1 to 100,000). */
  pauseMicros?: number;
}

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

// ------------------------------------------------------------------ shaping

const mappingFields = native.mappingFields;

function figuresOf(
  data: BigUint64Array,
  k: number,
  size: number,
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
    vss: size,
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
  if (!options.mappings) return shapeTotals(t, pfnsVisible);
  const slots = t.ranges.length / 2;
  const data = new BigUint64Array(slots * mappingFields);
  t.walk.figures(data);
  const total: ProcessMemory = { ...emptyFigures(), ...walkedProcess(t, pfnsVisible) };
  const perMapping: MappingMemory[] = [];
  // Unwalked mappings ([vsyscall]) still count in VSS; a whole-space walk
  // is one range whose size is the process's VSS.
  total.vss += t.unwalkedVss;
  for (let k = 0; k < slots; k++) {
    const anonHuge = t.anonHuge[k] ?? Number(data[k * mappingFields + MappingField.AnonHugePages]) * PAGE;
    const size = t.wholeSpace ? t.vss : (t.ranges[2 * k + 1] - t.ranges[2 * k]) * PAGE;
    const fig = figuresOf(data, k, size, t.shmemSwap[k] ?? 0, anonHuge);
    addFigures(total, fig);
    perMapping.push({ mapping: t.maps[t.mapOf[k]], ...fig });
  }
  total.mappings = perMapping;
  return total;
}

/** What a report from a walk says besides its figures. */
function walkedProcess(t: Target, pfnsVisible: boolean) {
  return {
    pid: t.pid,
    source: 'pagemap' as const,
    observer: 'included' as const,
    pfnsVisible,
    partial: t.partial,
    timings: t.timings,
  };
}

/**
 * Process figures without per-mapping output: the walk's figures summed
 * natively (no row per mapping here: 60,000 mappings took 68 ms of shaping).
 * The same sums as shapeProcess(), every PSS field in fixed point.
 */
function shapeTotals(t: Target, pfnsVisible: boolean): ProcessMemory {
  const data = new BigUint64Array(mappingFields);
  t.walk.figureTotals(data);
  let shmemSwapPages = 0;
  for (const s of t.shmemSwap) shmemSwapPages += s ?? 0;
  const anonHuge =
    t.anonHuge.length > 0 ? t.anonHuge.reduce((a, b) => a + b, 0) : Number(data[MappingField.AnonHugePages]) * PAGE;
  return {
    ...emptyFigures(),
    ...figuresOf(data, 0, t.vss, shmemSwapPages, anonHuge),
    ...walkedProcess(t, pfnsVisible),
  };
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

export function checkAccountingOptions(options: AccountingOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  if (options.unprivileged !== undefined && options.unprivileged !== 'smaps' && options.unprivileged !== 'error') {
    throw new RangeError("options.unprivileged must be 'smaps' or 'error'");
  }
  if (options.excludeSelf !== undefined && typeof options.excludeSelf !== 'boolean')
    throw new TypeError(`options.excludeSelf must be a boolean, got ${describe(options.excludeSelf)}`);
  lockPauseMicros(options.lockPauses);
}

/**
 * The default lock pauses: chosen on the bench's stall scenario, see
 * docs/performance.md ("The stall").
 */
export const DEFAULT_LOCK_PAUSES: Readonly<Required<LockPauses>> = Object.freeze({ holdMicros: 100, pauseMicros: 50 });

const LOCK_PAUSE_LIMITS = { holdMicros: 1_000_000, pauseMicros: 100_000 } as const;

/** Validated lock pauses as the addon takes them: [holdMicros, pauseMicros], [0, 0] for none. */
export function lockPauseMicros(lockPauses: LockPauses | false | undefined): [number, number] {
  if (lockPauses === false) return [0, 0];
  if (lockPauses === undefined) return [DEFAULT_LOCK_PAUSES.holdMicros, DEFAULT_LOCK_PAUSES.pauseMicros];
  if (lockPauses === null || typeof lockPauses !== 'object' || Array.isArray(lockPauses))
    throw new TypeError(`options.lockPauses must be an object or false, got ${describe(lockPauses)}`);
  const value = (key: keyof typeof LOCK_PAUSE_LIMITS): number => {
    const v = lockPauses[key];
    if (v === undefined) return DEFAULT_LOCK_PAUSES[key];
    if (typeof v !== 'number') throw new TypeError(`options.lockPauses.${key} must be a number, got ${describe(v)}`);
    if (!Number.isInteger(v) || v < 1 || v > LOCK_PAUSE_LIMITS[key])
      throw new RangeError(
        `options.lockPauses.${key} must be an integer from 1 to ${LOCK_PAUSE_LIMITS[key]}, got ${v}`,
      );
    return v;
  };
  return [value('holdMicros'), value('pauseMicros')];
}

// The measuring pipeline, written once for processMemory() and snapshot():
// per process, open pagemap (pinning the address space), read maps, walk,
// swapped shmem, THP, exec check; then for all of them at once, privilege,
// one kpage lookup per distinct frame, settling, shaping and the
// smaps_rollup fallback. The figure arithmetic lives in accounting.ts.
import {
  type AccountingOptions,
  addProcessTimings,
  addTallyTimings,
  addWalkTimings,
  callerCpuMs,
  checkAccountingOptions,
  emptyFigures,
  emptyTimings,
  figuresFromRollup,
  lockPauseMicros,
  type MappingMemory,
  type ProcessMemory,
  shapeProcess,
  type Timings,
} from './accounting';
import { systemError, validatePid } from './errors';
import { kpagePaths, kpageReadable, type PageFeatures, pageFeatures } from './kpage';
import {
  MAP_SHARED,
  MAP_WRITE,
  MapField,
  type NativeSharedFrames,
  type NativeTally,
  type NativeWalk,
  native,
  TallyStat,
  WALK_COLLECT_SWAP,
  WALK_LOOKUP_EXCLUSIVE_ANON,
  WALK_NO_HUGETLB,
  WALK_NO_KSM,
  WALK_NO_PROCMAP_QUERY,
  WALK_NO_SCAN,
  WALK_ONE_THREAD,
  WALK_SHMEM_MAPPINGS,
  WALK_WHOLE_SPACE,
  type WalkStats,
  walkStats,
} from './native';
import { KERNEL_HALF, PAGE, PAGE_SHIFT } from './page';
import { openPagemap, type PagemapHandle, ScanCategory } from './pagemap';
import { FACTS_EXE, FACTS_STATUS, type ProcFacts, readFacts } from './proc/facts';
import { type Mapping, readMaps, readMapsAsync } from './proc/maps';
import { readMeminfo } from './proc/meminfo';
import { readSmaps, readSmapsAsync, readSmapsRollupAsync } from './proc/smaps';
import { procmapQueryDisabled, scanDisabled } from './switches';

/** Whole-space walks of processes with less resident memory use one thread. */
const ONE_THREAD_BELOW_RSS = 256 * 1024 * 1024;
/** The same when one process alone is measured (see prepareWithSentinel). */
const ONE_THREAD_BELOW_RSS_ALONE = 64 * 1024 * 1024;

/**
 * A mapping that may be shmem (device major 0 with an inode), whose swapped
 * pages smaps counts in Swap though pagemap shows none: see measureShmemSwap().
 */
export interface ShmemRange {
  /** The walked range (slot) its swap is counted in. */
  slot: number;
  startPage: number;
  endPage: number;
  offsetPages: number;
  /** The file's identity and range: one object mapped by many processes is measured once. */
  key: string;
  privateWritable: boolean;
}

/** One process being measured: its walked ranges, native walk and extras. */
export interface Target {
  pid: number;
  /**
   * Its mappings as objects, only when per-mapping output was asked for
   * (lib/proc/maps.ts); otherwise empty, and the ranges come from the
   * addon's own maps reader without a JavaScript object per mapping.
   */
  maps: Mapping[];
  /** With maps: the index into maps of each walked range. */
  mapOf: number[];
  /** The walked ranges as page numbers, start and end of each; a whole-space walk has one. */
  ranges: Float64Array;
  /** Mapped address space in bytes. */
  vss: number;
  /** Address space counted in VSS but not walked (the [vsyscall] gate area), in bytes. */
  unwalkedVss: number;
  /** Walked as one address space, populated stretches found with PAGEMAP_SCAN. */
  wholeSpace: boolean;
  walk: NativeWalk;
  /**
   * The mappings that may be shmem, for swapped shmem (only while a swap
   * slot is in use); a whole-space walk reads them itself (WALK_SHMEM_MAPPINGS).
   */
  shmem: ShmemRange[];
  /** Swapped shmem pages per walked range; null: unknown (no privilege). */
  shmemSwap: (number | null)[];
  /** AnonHugePages bytes per walked range; a missing entry means the walk's own figure. */
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
  return identityOf(readFacts(pid, FACTS_EXE));
}

/**
 * The identity of a process measured alone, read once its walk is done. A
 * process that exited meanwhile (its /proc directory gone, or a zombie's
 * exe unreadable) is the documented ESRCH "process exited", as if the walk's
 * last read had failed: not the ENOENT of a pid that never existed.
 */
function identityAfterWalk(pid: number): string {
  try {
    return processIdentity(pid);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ESRCH') throw err;
    throw systemError('ESRCH', -3, 'read', `/proc/${pid}/pagemap`, 'process exited');
  }
}

/** The identity of facts read with FACTS_EXE ('' for the exe of kernel threads and zombies). */
export function identityOf(facts: ProcFacts): string {
  return `${facts.startTime}:${facts.exe}`;
}

export function walkFlags(features: PageFeatures): number {
  let flags = WALK_COLLECT_SWAP;
  if (features.ksmActive || features.hugetlbInUse) flags |= WALK_LOOKUP_EXCLUSIVE_ANON;
  // kpageflags only where pagemap and the mapping's kind leave a figure open
  // (PAGEWALK_ALL_KPAGEFLAGS=1 reads them for every pending frame, to compare).
  if (process.env.PAGEWALK_ALL_KPAGEFLAGS !== '1') {
    if (!features.ksmActive) flags |= WALK_NO_KSM;
    if (!features.hugetlbInUse) flags |= WALK_NO_HUGETLB;
  }
  if (scanDisabled()) flags |= WALK_NO_SCAN;
  if (procmapQueryDisabled()) flags |= WALK_NO_PROCMAP_QUERY;
  return flags;
}

/**
 * Opens and prepares one process. wholeSpace: walk its address space as one
 * range instead of reading its maps (only figures of the whole process).
 */
export async function prepareTarget(pid: number, flags: number, how: PrepareOptions = {}): Promise<Target> {
  let sentinel: PagemapHandle | null = null;
  try {
    sentinel = openPagemap(pid);
  } catch (err) {
    // ESRCH: no mm (kernel thread, zombie); its maps read empty below, or
    // the process is gone and the reads below say so.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  try {
    return await prepareWithSentinel(pid, flags, sentinel, how);
  } catch (err) {
    sentinel?.close();
    throw err;
  }
}

let gateAreaBytes: number | undefined;
/**
 * The gate area ([vsyscall] on x86-64): listed in every 64-bit process's
 * maps, so counted in VSS, but not in VmSize. The same for every process of
 * this machine's kind, so read once from our own maps.
 */
function gateArea(): number {
  if (gateAreaBytes === undefined) {
    gateAreaBytes = 0;
    for (const m of readMaps(process.pid)) if (m.start >= KERNEL_HALF) gateAreaBytes += m.size;
  }
  return gateAreaBytes;
}

/** How prepareTarget() reads a process. */
export interface PrepareOptions {
  /** Walk the address space as one range (PAGEMAP_SCAN finds what is populated): no per-mapping figures. */
  wholeSpace?: boolean;
  /** Read the mappings as objects (lib/proc/maps.ts), for per-mapping output. */
  mappingObjects?: boolean;
  /** The mappings that may be shmem are needed (a swap slot is in use). */
  shmem?: boolean;
  /** The only process measured: a whole-space walk may take both cores whatever its size. */
  alone?: boolean;
  /** [holdMicros, pauseMicros] of the walk's lock pauses (AccountingOptions.lockPauses); none if absent. */
  lockPauses?: [number, number];
  /** Frames of shared file pages passed between the walks of one measurement; none if absent. */
  sharedFrames?: NativeSharedFrames | null;
  /**
   * The process's facts read with FACTS_EXE | FACTS_STATUS just before
   * (snapshot() lists with them): its identity and VSS, not read again.
   */
  facts?: ProcFacts;
}

function shmemKey(major: number, minor: number, inode: string, offsetPages: number, pages: number): string {
  return `${major}:${minor}:${inode}:${offsetPages}:${pages}`;
}

/** The shmem candidates among native map records (MapField layout), each counted in slot(i). */
function shmemFromRecords(records: Float64Array, slot: (i: number) => number): ShmemRange[] {
  const out: ShmemRange[] = [];
  const n = native.mapFields;
  for (let i = 0; i < records.length / n; i++) {
    const r = (f: MapField) => records[i * n + f];
    const hi = r(MapField.InodeHigh);
    const lo = r(MapField.InodeLow);
    if (r(MapField.DevMajor) !== 0 || (hi === 0 && lo === 0)) continue;
    const startPage = r(MapField.StartPage);
    const endPage = r(MapField.EndPage);
    const offsetPages = r(MapField.OffsetPage);
    const inode = ((BigInt(hi) << 32n) | BigInt(lo)).toString();
    const flags = r(MapField.Flags);
    out.push({
      slot: slot(i),
      startPage,
      endPage,
      offsetPages,
      key: shmemKey(0, r(MapField.DevMinor), inode, offsetPages, endPage - startPage),
      privateWritable: (flags & MAP_SHARED) === 0 && (flags & MAP_WRITE) !== 0,
    });
  }
  return out;
}

async function prepareWithSentinel(
  pid: number,
  flags: number,
  sentinel: PagemapHandle | null,
  how: PrepareOptions,
): Promise<Target> {
  const began = performance.now();
  // Status only for a whole-space walk, which takes VSS and RSS from it.
  const facts = how.facts ?? readFacts(pid, FACTS_EXE | (how.wholeSpace ? FACTS_STATUS : 0));
  const identity = identityOf(facts);
  const timings = emptyTimings();
  const pauses = how.lockPauses ?? [0, 0];
  const walkExtras = [pauses[0], pauses[1], how.sharedFrames ?? undefined] as const;
  const base = {
    pid,
    shmemSwap: [],
    anonHuge: [],
    timings,
    identity,
    partial: false,
    sentinel,
    wholeSpace: how.wholeSpace === true,
  };
  if (how.wholeSpace) {
    // Without an mm (kernel thread, zombie) there is nothing to walk.
    const status = sentinel ? facts : { vmSize: 0, vmRss: 0 };
    const vmSize = status.vmSize;
    const ranges = new Float64Array(vmSize > 0 ? [0, native.wholeSpaceEndPage()] : []);
    // A second thread pays off only for a large walk; most processes of a
    // system are small, and snapshot() already walks two at once. Alone,
    // a moderate resident size may still mean tens of thousands of
    // mappings, each costing the kernel's pagemap read more than ten pages
    // of a dense stretch (60,000 one-page mappings: 17 ms of reads for 234
    // MiB), so the bar is lower; below it the spawn is not worth it.
    const minRss = how.alone ? ONE_THREAD_BELOW_RSS_ALONE : ONE_THREAD_BELOW_RSS;
    const oneThread = status.vmRss < minRss ? WALK_ONE_THREAD : 0;
    // The walk reads the mappings that may be shmem itself, on its thread.
    const shmem = how.shmem ? WALK_SHMEM_MAPPINGS : 0;
    const walk = new native.Walk(pid, ranges, flags | WALK_WHOLE_SPACE | oneThread | shmem, ...walkExtras);
    timings.maps = performance.now() - began;
    return {
      ...base,
      maps: [],
      mapOf: [],
      ranges,
      vss: vmSize > 0 ? vmSize + gateArea() : 0,
      unwalkedVss: 0,
      walk,
      shmem: [],
    };
  }
  if (how.mappingObjects) {
    const maps = await readMapsAsync(pid);
    const mapOf: number[] = [];
    let vss = 0;
    for (let i = 0; i < maps.length; i++) {
      vss += maps[i].size;
      if (maps[i].start < KERNEL_HALF && maps[i].end > maps[i].start) mapOf.push(i);
    }
    const ranges = new Float64Array(mapOf.length * 2);
    const shmem: ShmemRange[] = [];
    let walkedVss = 0;
    mapOf.forEach((mi, k) => {
      const m = maps[mi];
      ranges[2 * k] = Number(m.start >> PAGE_SHIFT);
      ranges[2 * k + 1] = Number(m.end >> PAGE_SHIFT);
      walkedVss += m.size;
      if (!how.shmem || m.deviceMajor !== 0 || m.inode === 0n) return;
      const offsetPages = Number(m.offset >> PAGE_SHIFT);
      const pages = ranges[2 * k + 1] - ranges[2 * k];
      shmem.push({
        slot: k,
        startPage: ranges[2 * k],
        endPage: ranges[2 * k + 1],
        offsetPages,
        key: shmemKey(m.deviceMajor, m.deviceMinor, m.inode.toString(), offsetPages, pages),
        privateWritable: !m.shared && m.write,
      });
    });
    const walk = new native.Walk(pid, ranges, flags, ...walkExtras);
    timings.maps = performance.now() - began;
    return { ...base, maps, mapOf, ranges, vss, unwalkedVss: vss - walkedVss, walk, shmem };
  }
  // Ranges and file identities as numbers: no object per mapping.
  const records = await native.readMappings(pid, false, !procmapQueryDisabled());
  const n = native.mapFields;
  const count = records.length / n;
  const ranges = new Float64Array(count * 2);
  let vss = 0;
  for (let i = 0; i < count; i++) {
    ranges[2 * i] = records[i * n + MapField.StartPage];
    ranges[2 * i + 1] = records[i * n + MapField.EndPage];
    vss += (ranges[2 * i + 1] - ranges[2 * i]) * PAGE;
  }
  // The gate area is listed in /proc/PID/maps of every process with an mm.
  const unwalkedVss = count > 0 ? gateArea() : 0;
  const shmem = how.shmem ? shmemFromRecords(records, (i) => i) : [];
  const walk = new native.Walk(pid, ranges, flags, ...walkExtras);
  timings.maps = performance.now() - began;
  return {
    ...base,
    maps: [],
    mapOf: [],
    ranges,
    vss: vss + unwalkedVss,
    unwalkedVss,
    walk,
    shmem,
  };
}

/** Walked ranges of a target. */
export function slots(t: Target): number {
  return t.ranges.length / 2;
}

/** Walks a prepared target: pagemap, then shmem swap and THP, each timed. */
export async function walkTarget(t: Target, ctx: MeasureContext): Promise<void> {
  await t.walk.runAsync();
  if (t.wholeSpace && ctx.swapInUse) t.shmem = shmemFromRecords(t.walk.shmemMappings(), () => 0);
  addWalkTimings(t.timings, t.walk);
  const walked = performance.now();
  measureShmemSwap(t, ctx);
  const swapDone = performance.now();
  t.timings.shmemSwap += swapDone - walked;
  measureAnonHuge(t, ctx.features);
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
    const { state } = readFacts(pid, 0);
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
 * Without a swap slot in use nothing can be swapped out, and one shmem range
 * mapped by many processes is measured once per call (ctx.shmemSwapMemo).
 */
export function measureShmemSwap(t: Target, ctx: MeasureContext): void {
  const swap: (number | null)[] = new Array(slots(t)).fill(0);
  t.shmemSwap = swap;
  if (!ctx.swapInUse) return;
  for (const r of t.shmem) {
    const pages = shmemSwapOf(t, r, ctx);
    const sum = swap[r.slot];
    swap[r.slot] = pages === null || sum === null ? null : sum + pages;
  }
}

function shmemSwapOf(t: Target, r: ShmemRange, ctx: MeasureContext): number | null {
  try {
    // The whole range's swap is a fact of the object, not of the mapper.
    let swapped = ctx.shmemSwapMemo.get(r.key);
    if (swapped === undefined) {
      swapped = native.shmemSwap(t.pid, r.startPage, r.endPage, r.offsetPages, false);
      if (swapped === SHMEM_NO_CACHESTAT) swapped = null;
      ctx.shmemSwapMemo.set(r.key, swapped);
    }
    if (swapped === SHMEM_NOT) return 0;
    if (swapped === null) return null;
    if (swapped > 0 && r.privateWritable) return native.shmemSwap(t.pid, r.startPage, r.endPage, r.offsetPages, true);
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
}

/** PMD-mapped anonymous THP per mapping (smaps AnonHugePages), via PAGEMAP_SCAN. */
export function measureAnonHuge(t: Target, features: PageFeatures): void {
  t.anonHuge = new Array(slots(t)).fill(0);
  if (!features.thpInUse || slots(t) === 0) return;
  // A whole-space walk runs only where PAGEMAP_SCAN works, and privileged
  // (PFNs visible) it finds every THP itself; hidden PFNs fall back to
  // smaps_rollup for every figure anyway.
  if (t.wholeSpace) {
    t.anonHuge = [];
    return;
  }
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
    for (let k = 0; k < slots(t) && supported; k++) {
      const [start, end] = rangeAddresses(t, k);
      if (end - start < 2n * 1024n * 1024n) continue;
      const r = handle.scan(start, end, {
        require: ScanCategory.HUGE | ScanCategory.PRESENT | ScanCategory.FILE | ScanCategory.PFNZERO,
        inverted: ScanCategory.FILE | ScanCategory.PFNZERO,
        anyOf: 0,
        report: ScanCategory.HUGE,
      });
      supported = r.supported;
      for (const reg of r.regions) t.anonHuge[k] += Number(reg.end - reg.start);
    }
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
  for (let k = 0; k < slots(t); k++) {
    const [start, end] = rangeAddresses(t, k);
    if (end - start < 2n * 1024n * 1024n) continue;
    const v = byStart.get(start);
    if (v === undefined) t.partial = true;
    else t.anonHuge[k] = v;
  }
}

/** Start and end address of walked range k. */
function rangeAddresses(t: Target, k: number): [bigint, bigint] {
  return [BigInt(t.ranges[2 * k]) << PAGE_SHIFT, BigInt(t.ranges[2 * k + 1]) << PAGE_SHIFT];
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

/**
 * Replaces computed figures with the kernel's own where they cannot be
 * exact: process totals from smaps_rollup and, when per-mapping figures were
 * asked for, each mapping's from /proc/PID/smaps (whose Pss lines the kernel
 * truncates to the kB one mapping at a time, so they may add up to a little
 * less than the total).
 */
export async function degradeToRollup(report: ProcessMemory, mappings = false): Promise<void> {
  const perMapping = mappings ? await mappingsFromSmaps(report.pid) : undefined;
  const rollup = await readSmapsRollupAsync(report.pid);
  Object.assign(report, figuresFromRollup(rollup.fields));
  report.source = 'smaps_rollup';
  report.observer = 'included';
  report.pfnsVisible = false;
  if (perMapping) report.mappings = perMapping;
  else delete report.mappings;
}

/** Per-mapping figures from the kernel's /proc/PID/smaps (user-space mappings, as a walk gives them). */
export async function mappingsFromSmaps(pid: number): Promise<MappingMemory[]> {
  const out: MappingMemory[] = [];
  for (const { fields, vmFlags: _flags, ...mapping } of await readSmapsAsync(pid)) {
    if (mapping.start >= KERNEL_HALF || mapping.end <= mapping.start) continue;
    const f = figuresFromRollup(fields);
    const pages = emptyFigures().pages;
    pages.resident = f.rss / PAGE;
    pages.private = f.uss / PAGE;
    pages.shared = f.shared / PAGE;
    pages.swapped = f.swap / PAGE;
    out.push({ mapping, vss: mapping.size, ...f, pages });
  }
  return out;
}

/**
 * Tells the tally to settle without the caller's own mappings: it reads the
 * caller's pagemap around its kpagecount lookups (native/tally.cc
 * resolveObserver). The whole address space where PAGEMAP_SCAN finds what is
 * populated, so that a mapping made meanwhile is seen too; else the
 * caller's mappings as they are now. observerWalk: the index of the
 * caller's own walk in the tally, or -1.
 */
export async function excludeObserver(tally: NativeTally, flags: number, observerWalk: number): Promise<void> {
  // No swap entry of the caller's matters; a small caller is walked by one thread.
  let walkFlags = flags & ~WALK_COLLECT_SWAP;
  if (process.memoryUsage.rss() < ONE_THREAD_BELOW_RSS) walkFlags |= WALK_ONE_THREAD;
  const end = native.wholeSpaceEndPage();
  if (end > 0 && !scanDisabled()) {
    tally.excludeObserver(new Float64Array([0, end]), walkFlags | WALK_WHOLE_SPACE, observerWalk);
    return;
  }
  const ranges: number[] = [];
  for (const m of await readMapsAsync(process.pid)) {
    if (m.start < KERNEL_HALF && m.end > m.start)
      ranges.push(Number(m.start >> PAGE_SHIFT), Number(m.end >> PAGE_SHIFT));
  }
  tally.excludeObserver(new Float64Array(ranges), walkFlags, observerWalk);
}

export function newTally(): NativeTally {
  const p = kpagePaths();
  return new native.Tally(p.kpagecount, p.kpageflags);
}

/** What every measurement of one call shares: page features, walk flags, swap state, memos. */
export interface MeasureContext {
  features: PageFeatures;
  flags: number;
  /** A swap slot is in use: without one no shmem page can be swapped out. */
  swapInUse: boolean;
  /** Swapped pages of shmem ranges measured in this call, by object and range. */
  shmemSwapMemo: Map<string, number | null>;
  /**
   * Walk each process as one address space (PAGEMAP_SCAN finds what is
   * populated) instead of mapping by mapping: when no per-mapping figure is
   * asked for and the kernel has PAGEMAP_SCAN. While a swap slot is in use
   * the mappings that may be shmem are read besides (PROCMAP_QUERY).
   */
  wholeSpace: boolean;
  /** Per-mapping output: read the mappings as objects. */
  mappingObjects: boolean;
  /** One process is measured (processMemory): its walk may use both cores. */
  alone: boolean;
  /** [holdMicros, pauseMicros] of the walks' lock pauses; [0, 0]: none. */
  lockPauses: [number, number];
  /**
   * Frames of MAP_SHARED file and shmem pages that the walks of this call
   * pass on to each other: a later mapper's walk asks PAGEMAP_SCAN which of
   * its pages are present and takes their frames from an earlier walk
   * instead of reading them (native/shared_frames.h). Null with
   * PAGEWALK_SHARE_FRAMES=0.
   */
  sharedFrames: NativeSharedFrames | null;
}

export function measureContext(options: AccountingOptions, alone = false): MeasureContext {
  const features = pageFeatures();
  let swapInUse = true;
  try {
    const m = readMeminfo();
    swapInUse = (m.SwapTotal ?? 1) - (m.SwapFree ?? 0) > 0;
  } catch {
    // no meminfo: assume swap, measure it
  }
  const mappingObjects = options.mappings === true;
  const wholeSpace = !mappingObjects && !scanDisabled() && native.wholeSpaceEndPage() > 0 && !wholeSpaceOff();
  return {
    features,
    flags: walkFlags(features),
    swapInUse,
    shmemSwapMemo: new Map(),
    wholeSpace,
    mappingObjects,
    alone,
    lockPauses: lockPauseMicros(options.lockPauses),
    sharedFrames: process.env.PAGEWALK_SHARE_FRAMES === '0' ? null : new native.SharedFrames(),
  };
}

/** PAGEWALK_WHOLE_SPACE=0 reads every process's maps instead (for comparison and tests). */
function wholeSpaceOff(): boolean {
  return process.env.PAGEWALK_WHOLE_SPACE === '0';
}

/**
 * One process, from the open of its pagemap to its THP: the target, and
 * whether its address space survived the walk (no exec or exit meanwhile).
 * On error the target is released and the error thrown.
 */
export async function measureProcess(
  pid: number,
  ctx: MeasureContext,
  into: Timings,
  facts?: ProcFacts,
): Promise<{ t: Target; survived: boolean }> {
  const t = await prepareTarget(pid, ctx.flags, {
    facts,
    wholeSpace: ctx.wholeSpace,
    mappingObjects: ctx.mappingObjects,
    shmem: ctx.swapInUse,
    alone: ctx.alone,
    lockPauses: ctx.lockPauses,
    sharedFrames: ctx.sharedFrames,
  });
  try {
    await walkTarget(t, ctx);
  } catch (err) {
    releaseTarget(t);
    throw err;
  } finally {
    addProcessTimings(into, t.timings);
  }
  return { t, survived: mmSurvived(t) };
}

/** A tally of walks settled against the kernel's per-frame facts. */
export interface Settled {
  tally: NativeTally;
  /**
   * The targets settled: those given, except that one whose walk took stale
   * shared frames was measured again (reading its own pagemap) and stands
   * in its place.
   */
  targets: Target[];
  /** Why exact figures are out of reach, or null. */
  gap: string | null;
  /** The caller's own mappings were taken off every mapcount (excludeSelf). */
  excluded: boolean;
}

/**
 * Privilege check, one kpage lookup of every distinct pending frame of all
 * the walks, settling and SwapPss. selfWalk: the index of the caller's own
 * walk among them (-1 if none), for excludeSelf.
 */
export async function settleTargets(
  targets: Target[],
  ctx: MeasureContext,
  options: AccountingOptions,
  selfWalk: number,
  timings: Timings,
): Promise<Settled> {
  const stats = targets.map((t) => walkStats(t.walk));
  const kpageOk = stats.every((s) => s.pendingPfns === 0) || kpageReadable();
  const gap = privilegeGap(stats, kpageOk);
  if (gap && options.unprivileged === 'error') throw unprivilegedError(targets[0]?.pid ?? process.pid, gap);
  const tally = newTally();
  for (const t of targets) tally.add(t.walk);
  if (!gap && options.excludeSelf) await excludeObserver(tally, ctx.flags, selfWalk);
  if (!gap) await tally.resolveAsync();
  const stale = gap ? [] : staleWalks(tally, targets.length);
  if (stale.length > 0) {
    // Frames an earlier walk recorded changed before a later walk took
    // them: those processes are measured again reading their own pagemap,
    // and everything is settled anew (the old tally's table goes to the
    // collector; its walks are the new tally's too).
    const again = await measureAgainUnshared(targets, stale, ctx, timings);
    return settleTargets(again, { ...ctx, sharedFrames: null }, options, selfWalk, timings);
  }
  tally.approximateSwapPss();
  addTallyTimings(timings, tally);
  const tallyStats = new Float64Array(native.tallyStatFields);
  tally.stats(tallyStats);
  // False also when the caller's own PFNs were hidden: figures then stay the kernel's view.
  const excluded = !gap && options.excludeSelf === true && tallyStats[TallyStat.ObserverExcluded] === 1;
  return { tally, targets, gap, excluded };
}

/** Indices of the walks that took stale shared frames (native Tally::staleFrames). */
function staleWalks(tally: NativeTally, walks: number): number[] {
  const stale = new Float64Array(walks);
  tally.staleFrames(stale);
  const out: number[] = [];
  for (let i = 0; i < walks; i++) if (stale[i] > 0) out.push(i);
  return out;
}

/**
 * The targets with those at `indices` measured again without shared
 * frames. One that cannot be (it exited meanwhile) keeps its walk, marked
 * partial: its identity check then reports it gone or partial.
 */
async function measureAgainUnshared(
  targets: Target[],
  indices: number[],
  ctx: MeasureContext,
  timings: Timings,
): Promise<Target[]> {
  const out = [...targets];
  const unshared = { ...ctx, sharedFrames: null };
  for (const i of indices) {
    try {
      const { t, survived } = await measureProcess(targets[i].pid, unshared, timings);
      if (!survived) t.partial = true;
      releaseTarget(targets[i]);
      out[i] = t;
    } catch {
      targets[i].partial = true;
    }
  }
  return out;
}

/** Figures of a settled target, with smaps_rollup standing in where they cannot be exact. */
export async function reportTarget(t: Target, options: AccountingOptions, gap: string | null): Promise<ProcessMemory> {
  const report = shapeProcess(t, options, !gap);
  if (gap) await degradeToRollup(report, options.mappings);
  else if (t.shmemSwap.includes(null)) report.swap = figuresFromRollup((await readSmapsRollupAsync(t.pid)).fields).swap;
  return report;
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
  const callerCpuBegan = callerCpuMs();
  const timings = emptyTimings();
  const ctx = measureContext(options, true);
  // A process that execs while it is walked makes the walk fail (ESRCH) or
  // read an address space its maps do not describe: measure it again.
  let t: Target;
  for (let attempt = 1; ; attempt++) {
    let survived: boolean;
    try {
      ({ t, survived } = await measureProcess(pid, ctx, timings));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH' && attempt < 3 && stillRunning(pid)) continue;
      throw err;
    }
    if (survived) break;
    // Exec'd (or exited) after its maps were read: the figures may mix two
    // address spaces. Try again while it keeps running, else say so.
    if (attempt >= 3 || !stillRunning(pid)) {
      t.partial = true;
      break;
    }
  }
  ctx.sharedFrames?.release();
  // The caller's own figures stay the kernel's: it is not gone while it measures itself.
  const settleOptions = { ...options, excludeSelf: options.excludeSelf && pid !== process.pid };
  const settled = await settleTargets([t], ctx, settleOptions, -1, timings);
  const { tally, gap, excluded } = settled;
  t = settled.targets[0];
  const shaping = performance.now();
  timings.walks = shaping - began - timings.kpage - timings.settle;
  if (identityAfterWalk(pid) !== t.identity) t.partial = true;
  const report = await reportTarget(t, options, gap);
  tally.release();
  if (excluded && report.source === 'pagemap') report.observer = 'excluded';
  const end = performance.now();
  timings.shape = end - shaping;
  timings.total = end - began;
  timings.cpu += callerCpuMs() - callerCpuBegan;
  report.timings = timings;
  return report;
}

// The addon's typed private interface (model: node-pty's native.d.ts). Only
// lib/ talks to it, and none of it is public API: arguments arrive here
// already validated and normalised to plain numbers, bigints and typed
// arrays. native/binding/ is the other side; the enums below mirror its
// layouts under the same names, and their sizes are checked on load.
import * as path from 'node:path';

import nodeGypBuild = require('node-gyp-build');

export interface NativePagemapHandle {
  read(firstPage: number, count: number, out: BigUint64Array, outOffset: number): number;
  readAsync(firstPage: number, count: number, out: BigUint64Array, outOffset: number): Promise<number>;
  scan(
    startPage: number,
    endPage: number,
    inverted: number,
    mask: number,
    anyof: number,
    returnMask: number,
    maxPages: number,
    out: BigUint64Array,
    state: Float64Array,
  ): number;
  close(): void;
  isOpen(): boolean;
}

export interface NativeWalk {
  run(): void;
  runAsync(): Promise<void>;
  /** mappings() * mappingFields values, laid out as MappingField. */
  figures(out: BigUint64Array): void;
  /** mappingFields values: figures() summed over the mappings. */
  figureTotals(out: BigUint64Array): void;
  /** walkStatFields values, laid out as WalkStat: read them with walkStats(). */
  stats(out: Float64Array): void;
  /** walkTimingFields values (ms of the walk's own threads), laid out as WalkTiming. */
  timings(out: Float64Array): void;
  mappings(): number;
  pendingPfns(out: BigUint64Array): number;
  /**
   * The mappings that may be shmem, mapFields values each laid out as
   * MapField, read as the walk started (option shmemMappings); empty without it.
   */
  shmemMappings(): Float64Array;
}

/**
 * The frames of MAP_SHARED file and shmem pages that one measurement's walks
 * pass on to each other (native/shared_frames.h), so that a page-cache page
 * mapped by many processes is read from pagemap once.
 */
export interface NativeSharedFrames {
  /** Bytes of the chunks of frames allocated so far. */
  bytes(): number;
  /** Frees the frames once no running walk holds them (the measurement is over). */
  release(): void;
}

export interface NativeTally {
  add(walk: NativeWalk): void;
  resolve(): void;
  resolveAsync(): Promise<void>;
  /** groups * groupFields values, laid out as GroupField. */
  groups(groupOf: Int32Array, groups: number, out: BigUint64Array): void;
  sharingMatrix(out: BigUint64Array): void;
  approximateSwapPss(): void;
  /** Frees the walks' pending frames once figures, groups and matrix are out. */
  release(): void;
  /**
   * Settle without the caller's own mappings: the tally walks the caller's
   * pagemap over these page ranges (walk option bits as for new Walk())
   * before and after the kpage lookups, re-reading frames it mapped or
   * unmapped meanwhile. observerWalk: the caller's own walk's index, or -1.
   */
  excludeObserver(ranges: Float64Array, walkOptions: number, observerWalk: number): void;
  /** tallyStatFields values, laid out as TallyStat. */
  stats(out: Float64Array): void;
  /**
   * After resolving: one value per walk added, the frames it took from
   * shared frames that no longer are what its pages map (stale).
   */
  staleFrames(out: Float64Array): void;
  /** tallyTimingFields values (ms), laid out as TallyTiming. */
  timings(out: Float64Array): void;
}

export interface NativeBinding {
  PagemapHandle: new (pid: number) => NativePagemapHandle;
  /** holdMicros, pauseMicros: lock pauses for a running target (0: none). */
  Walk: new (
    pid: number,
    ranges: Float64Array,
    options: number,
    holdMicros?: number,
    pauseMicros?: number,
    sharedFrames?: NativeSharedFrames,
  ) => NativeWalk;
  SharedFrames: new () => NativeSharedFrames;
  Tally: new (kpagecountPath: string, kpageflagsPath: string) => NativeTally;
  countStates(entries: BigUint64Array, offset: number, count: number, out: Float64Array): void;
  /**
   * An array over memory the addon owns, which readAsync() fills directly
   * on the pool thread instead of copying on the JS thread; undefined where
   * the runtime refuses external ArrayBuffers.
   */
  entryBuffer(count: number): BigUint64Array | undefined;
  /** Index (from offset) of the first present or swapped entry; count when there is none. */
  firstPopulated(entries: BigUint64Array, offset: number, count: number): number;
  extractPfns(entries: BigUint64Array, offset: number, count: number, out: BigUint64Array): number;
  runLengths(entries: BigUint64Array, offset: number, count: number, mask: bigint, out: BigUint64Array): number;
  shmemSwap(pid: number, startPage: number, endPage: number, fileOffsetPages: number, holesOnly: boolean): number;
  /** out[i] = 1 when page firstPage + i of the mapping has its shmem file page in swap; -1 not shmem, -2 no cachestat. */
  shmemSwapMap(
    pid: number,
    startPage: number,
    endPage: number,
    fileOffsetPages: number,
    firstPage: number,
    out: Uint8Array,
  ): number;
  kpageLookup(
    kpagecountPath: string,
    kpageflagsPath: string,
    pfns: BigUint64Array,
    counts: Uint32Array,
    flags: Uint32Array,
    async: boolean,
  ): undefined | Promise<void>;
  /**
   * User-space mappings (PROCMAP_QUERY, else /proc/PID/maps parsed natively),
   * mapFields values each, laid out as MapField. shmemOnly: only mappings that
   * may be shmem (device major 0 with an inode); MAP_FILE_BACKED: every
   * mapping of a file (an inode).
   */
  readMappings(pid: number, shmemOnly: boolean | typeof MAP_FILE_BACKED, useQuery: boolean): Promise<Float64Array>;
  /**
   * The frame census of [firstPfn, endPfn) (native/ram_census.h): framesRead,
   * bytesRead, frames per FrameClass, then per cgroup its inode and frames per
   * FrameClass. cgroupPath '': no per-cgroup counts. ramRanges: [start, end)
   * PFN pairs of System RAM, empty when unknown.
   */
  ramCensusRange(
    kpageflagsPath: string,
    kpagecountPath: string,
    kpagecgroupPath: string,
    ramRanges: Float64Array,
    firstPfn: number,
    endPfn: number,
  ): Promise<Float64Array>;
  /** Per path: cached, dirty, writeback, evicted pages, errno (0: ok), 1 when counted by mincore. */
  fileCache(paths: string[]): Promise<Float64Array>;
  frameClasses: number;
  /** The sizes of the layouts below, as the addon was built. */
  mappingFields: number;
  groupFields: number;
  walkStatFields: number;
  walkTimingFields: number;
  tallyStatFields: number;
  tallyTimingFields: number;
  mapFields: number;
  /**
   * The kernel's page size (sysconf(_SC_PAGESIZE)): always the addon's own,
   * 4096, since the addon refuses to load where the two differ
   * (native/page_size.h).
   */
  pageSize: number;
  /** The option bits of new Walk(), native/binding/walk.h's WalkOption. */
  walkOptions: {
    lookUpExclusiveAnon: number;
    collectSwapEntries: number;
    noScan: number;
    wholeSpace: number;
    oneThread: number;
    noKsm: number;
    noHugetlb: number;
    noProcmapQuery: number;
    shmemMappings: number;
  };
  /** TASK_SIZE as a page number, or 0 when the kernel lacks PAGEMAP_SCAN (no whole-space walks). */
  wholeSpaceEndPage(): number;
  /** The PAGEMAP_SCAN categories the kernel knows (probed once), 0 without PAGEMAP_SCAN. */
  scanCategories(): number;
  /**
   * A process's stat, status, cmdline and exe facts (the files `wanted`
   * names, factsWanted bits): factFields numbers laid out as FactField, and
   * comm, cmdline and exe bytes one after the other in text. Returns the
   * bytes the text takes; when text is shorter it is left unwritten.
   */
  procFacts(pid: number, wanted: number, numbers: Float64Array, text: Uint8Array): number;
  /** The whole of a file, read on one pool thread (rejects with code, errno, syscall and path). */
  readProcText(path: string): Promise<Buffer>;
  /** CPU time of the calling thread in ms (CLOCK_THREAD_CPUTIME_ID). */
  threadCpuMs(): number;
  factFields: number;
  factsWanted: { stat: number; status: number; cmdline: number; exe: number };
}

// Per-mapping figure slots: native/process_walk.h's MappingField.
export enum MappingField {
  RssPages = 0,
  PssFixed,
  PrivatePages,
  SharedPages,
  PssAnonFixed,
  PssFileFixed,
  PssShmemFixed,
  AnonymousPages,
  KsmPages,
  SwapPages,
  SwapPssFixed,
  PresentPages,
  ZeroPages,
  HugetlbPages,
  UnresolvedPages,
  AnonHugePages,
}

// Per-group slots: native/tally.h's GroupField.
export enum GroupField {
  OnlyPages = 0,
  SharedOutsidePages,
  DistinctPages,
}

// Walk statistics: native/binding/walk.h's WalkStat.
export enum WalkStat {
  EntriesRead = 0,
  ReadCalls,
  ScanCalls,
  PagesSkippedByScan,
  ScanUnsupported,
  PfnsVisible,
  SawHiddenPfn,
  PendingPfns,
  SwapEntries,
  LockPauses,
  SharedFramePages,
  SharedBlockPages,
}

// Time of a walk's own threads: native/binding/walk.h's WalkTiming.
export enum WalkTiming {
  PagemapMs = 0,
  ScanMs,
  ThpMs,
  ClassifyMs,
  PausedMs,
  /** Reading the shmem candidates (option shmemMappings). */
  MapsMs,
  UnraisedMs,
  /** CPU time of the walk's threads (both, when it is split). */
  CpuMs,
}

// Tally statistics: native/binding/tally.cc's TallyStat.
export enum TallyStat {
  DistinctPfns = 0,
  BytesRead,
  ReadCalls,
  PfnLimit,
  /** 1 when the caller's mappings were taken off (excludeSelf), else 0. */
  ObserverExcluded,
  /** Reads of the caller's own pagemap. */
  ObserverReads,
  /** Frames whose count was read again because the caller mapped or unmapped them meanwhile. */
  ObserverRereadFrames,
  /** Frames the caller still mapped or unmapped after the last re-read. */
  ObserverUnsettledFrames,
}

// Tally timings: native/binding/tally.cc's TallyTiming.
export enum TallyTiming {
  KpageMs = 0,
  SettleMs,
  /** CPU time of every thread of the lookups and settling. */
  CpuMs,
}

// One mapping of readMappings(): native/binding/maps.h's MapField.
export enum MapField {
  StartPage = 0,
  EndPage,
  OffsetPage,
  DevMajor,
  DevMinor,
  InodeHigh,
  InodeLow,
  /** MapFlag bits. */
  Flags,
}

// A process's facts from procFacts(): native/binding/proc_facts.cc's FactField.
export enum FactField {
  Ppid = 0,
  /** The state letter's character code. */
  State,
  Flags,
  StartTime,
  Uid,
  VmSizeKb,
  VmRssKb,
  CommBytes,
  CmdlineBytes,
  /** -1 when the exe link could not be read. */
  ExeBytes,
}

// The class of a page frame in the census: native/ram_census.h's FrameClass.
export enum FrameClass {
  Hole = 0,
  Buddy,
  Hugetlb,
  Offline,
  HwPoison,
  Reserved,
  Slab,
  PageTable,
  MappedAnon,
  MappedShmem,
  MappedFile,
  SwapCache,
  AnonUnmapped,
  Shmem,
  File,
  OtherFlagged,
  Unflagged,
}

/** readMappings()'s selection of every file mapping: native/maps_parser.h's MapSelection::kFileBacked. */
export const MAP_FILE_BACKED = 2;

/** MapField.Flags bits: native/maps_parser.h's MapFlag. */
export const MAP_WRITE = 2;
export const MAP_SHARED = 8;

// Loaded from the package root whether this file runs from lib/ (tests) or
// dist/ (the published build): prebuilds/ first, then build/Release.
export const native: NativeBinding = nodeGypBuild(path.join(__dirname, '..')) as NativeBinding;

/** How many members a numeric enum has. */
function members(e: object): number {
  return Object.values(e).filter((v) => typeof v === 'number').length;
}

// An addon built from other sources than this file (a stale build/) would
// fill the wrong slots without a word: refuse it.
for (const [name, built, mirrored] of [
  ['mappingFields', native.mappingFields, members(MappingField)],
  ['groupFields', native.groupFields, members(GroupField)],
  ['walkStatFields', native.walkStatFields, members(WalkStat)],
  ['walkTimingFields', native.walkTimingFields, members(WalkTiming)],
  ['tallyStatFields', native.tallyStatFields, members(TallyStat)],
  ['tallyTimingFields', native.tallyTimingFields, members(TallyTiming)],
  ['mapFields', native.mapFields, members(MapField)],
  ['factFields', native.factFields, members(FactField)],
  ['frameClasses', native.frameClasses, members(FrameClass)],
] as const) {
  if (built !== mirrored)
    throw new Error(
      `pagewalk: the native addon's ${name} is ${built}, lib/native.ts has ${mirrored}: rebuild it (npm run build)`,
    );
}

// Walk option bits, as the addon defines them.
export const WALK_LOOKUP_EXCLUSIVE_ANON = native.walkOptions.lookUpExclusiveAnon;
export const WALK_COLLECT_SWAP = native.walkOptions.collectSwapEntries;
export const WALK_NO_SCAN = native.walkOptions.noScan;
export const WALK_WHOLE_SPACE = native.walkOptions.wholeSpace;
export const WALK_ONE_THREAD = native.walkOptions.oneThread;
/** No KSM page exists: pending anonymous frames need no kpageflags read. */
export const WALK_NO_KSM = native.walkOptions.noKsm;
/** No hugetlb page exists: frames whose kind pagemap and the mapping decide need no kpageflags read. */
export const WALK_NO_HUGETLB = native.walkOptions.noHugetlb;
/** Walk as on a kernel without PROCMAP_QUERY (PAGEWALK_DISABLE_PROCMAP_QUERY=1). */
export const WALK_NO_PROCMAP_QUERY = native.walkOptions.noProcmapQuery;
/** Read the mappings that may be shmem as the walk starts (NativeWalk.shmemMappings()). */
export const WALK_SHMEM_MAPPINGS = native.walkOptions.shmemMappings;

/** A walk's statistics by name. */
export interface WalkStats {
  entriesRead: number;
  readCalls: number;
  scanCalls: number;
  pagesSkippedByScan: number;
  /** The kernel lacks PAGEMAP_SCAN: the walk read every entry. */
  scanUnsupported: boolean;
  /** pagemap showed PFNs (CAP_SYS_ADMIN). */
  pfnsVisible: boolean;
  /** Some present page came without its PFN. */
  sawHiddenPfn: boolean;
  /** PFNs left for the tally's kpagecount/kpageflags lookups. */
  pendingPfns: number;
  swapEntries: number;
  /** Pauses taken for the target's mmap writers (lockPauses). */
  lockPauses: number;
  /** Present entries rebuilt from frames another walk read (SharedFrames) instead of read. */
  sharedFramePages: number;
  /** Of those, pages of whole recorded chunks added as their runs, no entry rebuilt or classified. */
  sharedBlockPages: number;
}

export function walkStats(walk: NativeWalk): WalkStats {
  const s = new Float64Array(native.walkStatFields);
  walk.stats(s);
  return {
    entriesRead: s[WalkStat.EntriesRead],
    readCalls: s[WalkStat.ReadCalls],
    scanCalls: s[WalkStat.ScanCalls],
    pagesSkippedByScan: s[WalkStat.PagesSkippedByScan],
    scanUnsupported: s[WalkStat.ScanUnsupported] === 1,
    pfnsVisible: s[WalkStat.PfnsVisible] === 1,
    sawHiddenPfn: s[WalkStat.SawHiddenPfn] === 1,
    pendingPfns: s[WalkStat.PendingPfns],
    swapEntries: s[WalkStat.SwapEntries],
    lockPauses: s[WalkStat.LockPauses],
    sharedFramePages: s[WalkStat.SharedFramePages],
    sharedBlockPages: s[WalkStat.SharedBlockPages],
  };
}

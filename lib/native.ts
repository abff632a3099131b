// The addon's private interface. Only lib/ talks to it: arguments arrive
// here already validated and normalised to plain numbers, bigints and typed
// arrays (see native/binding.cc for the other side).
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
  figures(out: BigUint64Array): void;
  stats(out: Float64Array): void;
  /** [pagemapMs, scanMs, thpMs, classifyMs] of the walk's own threads. */
  timings(out: Float64Array): void;
  mappings(): number;
  pendingPfns(out: BigUint64Array): number;
}

export interface NativeTally {
  add(walk: NativeWalk): void;
  resolve(): void;
  resolveAsync(): Promise<void>;
  groups(groupOf: Int32Array, groups: number, out: BigUint64Array): void;
  sharingMatrix(out: BigUint64Array): void;
  approximateSwapPss(): void;
  excludeObserver(observerPfns: BigUint64Array, observerWalk: number): void;
  stats(out: Float64Array): void;
  /** [kpageMs, settleMs] */
  timings(out: Float64Array): void;
}

export interface NativeBinding {
  PagemapHandle: new (pid: number) => NativePagemapHandle;
  Walk: new (pid: number, ranges: Float64Array, options: number) => NativeWalk;
  Tally: new (kpagecountPath: string, kpageflagsPath: string) => NativeTally;
  countStates(entries: BigUint64Array, offset: number, count: number, out: Float64Array): void;
  extractPfns(entries: BigUint64Array, offset: number, count: number, out: BigUint64Array): number;
  runLengths(entries: BigUint64Array, offset: number, count: number, mask: bigint, out: BigUint64Array): number;
  shmemSwap(pid: number, startPage: number, endPage: number, fileOffsetPages: number, holesOnly: boolean): number;
  kpageLookup(
    kpagecountPath: string,
    kpageflagsPath: string,
    pfns: BigUint64Array,
    counts: Uint32Array,
    flags: Uint32Array,
    async: boolean,
  ): undefined | Promise<void>;
  mappingFields: number;
  groupFields: number;
}

// Walk option bits, mirrored from binding.cc's Walk constructor.
export const WALK_LOOKUP_EXCLUSIVE_ANON = 1;
export const WALK_COLLECT_SWAP = 2;
export const WALK_NO_SCAN = 4;

// Per-mapping figure slots, mirrored from native/process_walk.h.
export enum Field {
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

// Per-group slots, mirrored from native/tally.h.
export enum GroupSlot {
  OnlyPages = 0,
  SharedOutsidePages,
  DistinctPages,
}

// Loaded from the package root whether this file runs from lib/ (tests) or
// dist/ (the published build): prebuilds/ first, then build/Release.
export const native: NativeBinding = nodeGypBuild(path.join(__dirname, '..')) as NativeBinding;

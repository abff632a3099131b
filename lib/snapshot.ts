// snapshot(): many processes in one pass. Their walks run on the thread
// pool side by side (both cores), every distinct PFN is looked up once for
// all of them, and the figures only a whole group can give are computed:
// the memory a group maps alone (what killing it frees) and what it shares.
import * as fs from 'node:fs';
import {
  type AccountingOptions,
  addFigures,
  callerCpuMs,
  checkAccountingOptions,
  emptyFigures,
  emptyTimings,
  type MemoryFigures,
  type ObserverView,
  type ProcessMemory,
  type Timings,
} from './accounting';
import { describe, validatePid } from './errors';
import { checkGrouping, type Grouping, kubeletNamesOnce, ProcessFacts, processGroup } from './groups';
import { GroupField, native, TallyStat } from './native';
import { PAGE } from './page';
import {
  measureContext,
  measureProcess,
  processIdentity,
  reportTarget,
  settleTargets,
  stillRunning,
  type Target,
} from './pipeline';
import { cpuCount, pool } from './pool';
import { FACTS_CMDLINE, FACTS_EXE, FACTS_STATUS, type ProcFacts, readFacts } from './proc/facts';
import { PF_KTHREAD } from './proc/stat';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** The kernel's comm (15 characters at most). */
  name: string;
  /** The command line joined by spaces, or [name] for kernel threads. */
  command: string;
  uid: number;
  user: string;
  kernelThread: boolean;
  /** Start time in clock ticks since boot: with the pid, it tells a process from a later one given the same pid. */
  startTime: number;
}

export interface ProcessReport extends ProcessMemory {
  info: ProcessInfo;
}

export interface GroupDefinition {
  name: string;
  /** Members: a predicate over processes in scope, or a list of pids. */
  match: ((p: ProcessInfo) => boolean) | number[];
}

/** Sizes in bytes. */
export interface GroupReport {
  name: string;
  pids: number[];
  /**
   * Distinct memory mapped only by the group's processes: what killing the
   * group frees. Null without CAP_SYS_ADMIN (snapshot source 'smaps_rollup'):
   * it needs every page's mapcount.
   */
  only: number | null;
  /** Distinct memory the group maps that processes outside it map too. Null like `only`. */
  sharedOutside: number | null;
  /** Distinct resident memory the group maps (its RSS without double counting). Null like `only`. */
  distinct: number | null;
  /** Sums of the members' figures. */
  totals: MemoryFigures;
  /** Members left unmeasured because the snapshot was cut short (options.signal): the figures miss them. */
  skipped: number[];
  /** For groupBy 'pod', 'container' or 'namespace': the names the group's name joins (see GroupOf). */
  labels?: Record<string, string>;
}

export interface GoneProcess {
  pid: number;
  name?: string;
  reason: 'exited' | 'reused' | 'denied' | 'error';
  message: string;
}

export interface SnapshotOptions extends AccountingOptions {
  /** The processes to measure. Default: every process. */
  pids?: number[];
  /** Or those for which this returns true. */
  filter?: (p: ProcessInfo) => boolean;
  /** Groups to account. `scope` (every measured process) is always computed. */
  groups?: GroupDefinition[];
  /**
   * Also put every measured process in a group by its name (comm), exe,
   * user or memory cgroup, or by rules (see parseGroupConfig): these groups
   * follow `groups` in the report, sorted by name.
   */
  groupBy?: Grouping;
  /** Where the kubelet's log directories are, for groupBy 'pod', 'container' and 'namespace'. Default /var/log. */
  kubeLogs?: string;
  /** Once aborted, no further process walk starts: the snapshot is cut short (see Snapshot.skipped). */
  signal?: AbortSignal;
  /**
   * Distinct pages shared by each pair of processes (costly with many
   * processes). Needs CAP_SYS_ADMIN: without it the snapshot has no matrix.
   */
  matrix?: boolean;
  /** Walks run at once. Default: the number of CPUs. */
  concurrency?: number;
  /** Called after each process walk: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface SharingMatrix {
  pids: number[];
  /** bytes[i * n + j]: memory mapped by both pids[i] and pids[j]; the diagonal is each one's distinct RSS. */
  bytes: Float64Array;
}

export interface Snapshot {
  processes: ProcessReport[];
  gone: GoneProcess[];
  /** Processes not measured because options.signal cut the snapshot short; empty when it is complete. */
  skipped: ProcessInfo[];
  /** The whole scope as a group: what only the measured processes map. */
  scope: GroupReport;
  groups: GroupReport[];
  matrix?: SharingMatrix;
  /** 'pagemap' when every figure is kernel-exact; 'smaps_rollup' when privilege was missing. */
  source: 'pagemap' | 'smaps_rollup';
  /**
   * 'excluded' when the caller's own mappings were taken off (`excludeSelf`):
   * every figure but the caller's own report, groups and scope included, is
   * what it will be once the caller has gone.
   */
  observer: ObserverView;
  /** SwapPss counts sharing among the scanned processes only: an approximation. */
  swapPssApproximate: true;
  /** Distinct page frames looked up in kpagecount/kpageflags. */
  distinctPfns: number;
  elapsedMs: number;
  /** Where the time went (ms); per-process phases summed over the processes. */
  timings: Timings;
}

let userNames: Map<number, string> | undefined;
function userName(uid: number): string {
  if (!userNames) {
    userNames = new Map();
    try {
      for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const f = line.split(':');
        if (f.length > 2 && !userNames.has(Number(f[2]))) userNames.set(Number(f[2]), f[0]);
      }
    } catch {
      // no passwd: numeric names
    }
  }
  return userNames.get(uid) ?? String(uid);
}

/** Facts about a process from /proc/PID/{stat,status,cmdline}. */
export function processInfo(pid: number): ProcessInfo {
  validatePid(pid);
  return infoOf(readFacts(pid, FACTS_STATUS | FACTS_CMDLINE));
}

function infoOf(facts: ProcFacts): ProcessInfo {
  const { pid, comm: name, uid } = facts;
  return {
    pid,
    ppid: facts.ppid,
    name,
    // exited meanwhile, or a kernel thread: the name
    command: facts.command || `[${name}]`,
    uid,
    user: userName(uid),
    kernelThread: (facts.flags & PF_KTHREAD) !== 0,
    startTime: facts.startTime,
  };
}

/** Every pid in /proc. */
export function listPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

function execedDuringWalk(info: ProcessInfo): GoneProcess {
  return {
    pid: info.pid,
    name: info.name,
    reason: 'reused',
    message: 'process changed (exec or pid reuse) during the walk',
  };
}

function goneFrom(pid: number, err: unknown, name?: string): GoneProcess {
  const e = err as NodeJS.ErrnoException;
  // The pagemap of a process that execs reads as ESRCH although the pid
  // lives on: that is a change of program, not an exit.
  if (e.code === 'ESRCH' && stillRunning(pid)) return execedDuringWalk({ pid, name: name ?? '' } as ProcessInfo);
  const reason =
    e.code === 'ENOENT' || e.code === 'ESRCH'
      ? 'exited'
      : e.code === 'EACCES' || e.code === 'EPERM'
        ? 'denied'
        : 'error';
  return { pid, name, reason, message: e.message };
}

export function checkSnapshotOptions(o: SnapshotOptions): void {
  checkAccountingOptions(o);
  if (o.pids !== undefined) {
    if (!Array.isArray(o.pids)) throw new TypeError('options.pids must be an array of pids');
    for (const [i, p] of o.pids.entries()) validatePid(p, `options.pids[${i}]`);
  }
  if (o.filter !== undefined && typeof o.filter !== 'function')
    throw new TypeError('options.filter must be a function');
  if (o.groups !== undefined) {
    if (!Array.isArray(o.groups)) throw new TypeError('options.groups must be an array');
    for (const g of o.groups) {
      if (!g || typeof g.name !== 'string') throw new TypeError('each group needs a name');
      if (typeof g.match !== 'function' && !Array.isArray(g.match))
        throw new TypeError(`group ${g.name}: match must be a function or a pid array`);
    }
  }
  if (o.groupBy !== undefined) checkGrouping(o.groupBy, 'options.groupBy');
  if (o.kubeLogs !== undefined && typeof o.kubeLogs !== 'string')
    throw new TypeError(`options.kubeLogs must be a string, got ${describe(o.kubeLogs)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new TypeError('options.signal must be an AbortSignal');
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 64)) {
    throw new RangeError('options.concurrency must be an integer from 1 to 64');
  }
}

/**
 * Measures many processes at once. A process that exits, is denied or whose
 * pid is reused mid-snapshot is listed in `gone`; the rest stays exact.
 */
export async function snapshot(options: SnapshotOptions = {}): Promise<Snapshot> {
  checkSnapshotOptions(options);
  const began = performance.now();
  const callerCpuBegan = callerCpuMs();
  const timings = emptyTimings();
  const ctx = measureContext(options);
  const gone: GoneProcess[] = [];
  const candidates = options.pids
    ? [...new Set(options.pids)]
    : listPids().filter((p) => p !== process.pid || !options.filter);
  // Each process's stat, status, cmdline and exe are read once, here: its
  // identity and VSS go on to its walk. So the identity checked after the
  // walk is the one recorded with the name and the filter's verdict: a pid
  // taken by another process between this listing and its walk is reported
  // reused, never under the name listed here (test/races.test.ts).
  const infos: ProcessInfo[] = [];
  const factsOf = new Map<number, ProcFacts>();
  for (const pid of candidates) {
    try {
      const facts = readFacts(pid, FACTS_STATUS | FACTS_CMDLINE | FACTS_EXE);
      const info = infoOf(facts);
      if (options.filter && !options.filter(info)) continue;
      infos.push(info);
      factsOf.set(pid, facts);
    } catch (err) {
      if (options.pids) gone.push(goneFrom(pid, err));
    }
  }

  const walksBegan = performance.now();
  timings.list = walksBegan - began;
  const targets: { info: ProcessInfo; t: Target }[] = [];
  const skipped: ProcessInfo[] = [];
  let done = 0;
  await pool(infos, options.concurrency ?? cpuCount(), async (info) => {
    if (options.signal?.aborted) {
      skipped.push(info);
      return;
    }
    try {
      const { t, survived } = await measureProcess(info.pid, ctx, timings, factsOf.get(info.pid));
      // The address space walked must still be the one whose maps were
      // read: a process that exec'd (even into the same program) is left
      // out rather than reported with figures mixing two images.
      if (survived) targets.push({ info, t });
      else if (stillRunning(info.pid)) gone.push(execedDuringWalk(info));
      else gone.push({ pid: info.pid, name: info.name, reason: 'exited', message: 'process exited during the walk' });
    } catch (err) {
      gone.push(goneFrom(info.pid, err, info.name));
    }
    options.onProgress?.(++done, infos.length);
  });
  timings.walks = performance.now() - walksBegan;
  ctx.sharedFrames?.release();
  targets.sort((a, b) => a.info.pid - b.info.pid);

  const selfWalk = targets.findIndex(({ info }) => info.pid === process.pid);
  const settled = await settleTargets(
    targets.map(({ t }) => t),
    ctx,
    options,
    selfWalk,
    timings,
  );
  const { tally, gap, excluded } = settled;
  // A process whose walk took stale shared frames was measured again.
  settled.targets.forEach((t, i) => {
    targets[i].t = t;
  });
  const shaping = performance.now();
  const tallyStats = new Float64Array(native.tallyStatFields);
  tally.stats(tallyStats);

  // A pid whose identity changed while it was walked may now be another process.
  const live: boolean[] = targets.map(({ info, t }) => {
    try {
      if (processIdentity(info.pid) === t.identity) return true;
      gone.push({
        pid: info.pid,
        name: info.name,
        reason: 'reused',
        message: 'process changed (exec or pid reuse) during the walk',
      });
    } catch (err) {
      gone.push(goneFrom(info.pid, err, info.name));
    }
    return false;
  });

  const processes: ProcessReport[] = [];
  for (let i = 0; i < targets.length; i++) {
    if (!live[i]) continue;
    const { info, t } = targets[i];
    let report: ProcessReport;
    try {
      report = { ...(await reportTarget(t, options, gap)), info };
    } catch (err) {
      gone.push(goneFrom(info.pid, err, info.name));
      live[i] = false;
      continue;
    }
    // The caller's own report stays the kernel's view.
    if (excluded && info.pid !== process.pid && report.source === 'pagemap') report.observer = 'excluded';
    processes.push(report);
  }

  // Groups are computed over every walk the tally holds; dead ones are in no group.
  const liveReports = new Map(processes.map((p) => [p.pid, p]));
  const definitions: GroupDefinition[] = [{ name: 'scope', match: () => true }, ...(options.groups ?? [])];
  const groupOf = new Int32Array(targets.length);
  const groupReports: GroupReport[] = [];
  const groupData = new BigUint64Array(native.groupFields);
  const inDefinition = (def: GroupDefinition, info: ProcessInfo) =>
    Array.isArray(def.match) ? def.match.includes(info.pid) : def.match(info);
  const report = (name: string, members: number[], data: BigUint64Array, at: number, skippedPids: number[]) => {
    const totals = emptyFigures();
    for (const pid of members) addFigures(totals, liveReports.get(pid) as ProcessReport);
    groupReports.push({
      name,
      pids: members,
      only: gap ? null : Number(data[at + GroupField.OnlyPages]) * PAGE,
      sharedOutside: gap ? null : Number(data[at + GroupField.SharedOutsidePages]) * PAGE,
      distinct: gap ? null : Number(data[at + GroupField.DistinctPages]) * PAGE,
      totals,
      skipped: skippedPids,
    });
  };
  definitions.forEach((def) => {
    const members: number[] = [];
    targets.forEach(({ info }, w) => {
      const inGroup = liveReports.has(info.pid) && inDefinition(def, info);
      groupOf[w] = inGroup ? 0 : -1;
      if (inGroup) members.push(info.pid);
    });
    tally.groups(groupOf, 1, groupData);
    const missed = skipped.filter((info) => inDefinition(def, info)).map((info) => info.pid);
    report(def.name, members, groupData, 0, missed);
  });
  if (options.groupBy) {
    // A partition: every group in one pass over the tally.
    const grouping = options.groupBy;
    const kubeletNames = kubeletNamesOnce(options.kubeLogs);
    const index = new Map<string, number>();
    const names: string[] = [];
    const labels = new Map<string, Record<string, string>>();
    const nameOf = (info: ProcessInfo) => {
      const g = processGroup(grouping, new ProcessFacts(info, kubeletNames));
      if (g?.labels) labels.set(g.name, g.labels);
      return g?.name;
    };
    const raw = targets.map(({ info }) => (liveReports.has(info.pid) ? nameOf(info) : undefined));
    const skippedNames = skipped.map(nameOf);
    for (const name of [...raw, ...skippedNames]) {
      if (name !== undefined && !index.has(name)) index.set(name, names.push(name) - 1);
    }
    const partition = new Int32Array(targets.length);
    raw.forEach((name, w) => {
      partition[w] = name === undefined ? -1 : (index.get(name) as number);
    });
    const data = new BigUint64Array(native.groupFields * Math.max(1, names.length));
    tally.groups(partition, names.length, data);
    const members = names.map((): number[] => []);
    const missed = names.map((): number[] => []);
    partition.forEach((g, w) => {
      if (g >= 0) members[g].push(targets[w].info.pid);
    });
    skippedNames.forEach((name, i) => {
      if (name !== undefined) missed[index.get(name) as number].push(skipped[i].pid);
    });
    const order = names.map((_, g) => g).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    for (const g of order) {
      report(names[g], members[g], data, g * native.groupFields, missed[g]);
      const named = labels.get(names[g]);
      if (named) (groupReports.at(-1) as GroupReport).labels = named;
    }
  }

  // Sharing needs PFNs: without them there is no matrix to give.
  let matrix: SharingMatrix | undefined;
  if (options.matrix && !gap) {
    const n = targets.length;
    const raw = new BigUint64Array(n * n);
    tally.sharingMatrix(raw);
    const keep = targets.map((_, i) => i).filter((i) => live[i]);
    const bytes = new Float64Array(keep.length * keep.length);
    for (const [a, i] of keep.entries()) {
      for (const [b, j] of keep.entries()) bytes[a * keep.length + b] = Number(raw[i * n + j]) * PAGE;
    }
    matrix = { pids: keep.map((i) => targets[i].info.pid), bytes };
  }
  tally.release();

  const end = performance.now();
  timings.shape = end - shaping;
  timings.total = end - began;
  timings.cpu += callerCpuMs() - callerCpuBegan;
  return {
    processes,
    gone: gone.sort((a, b) => a.pid - b.pid),
    skipped: skipped.sort((a, b) => a.pid - b.pid),
    scope: groupReports[0],
    groups: groupReports.slice(1),
    matrix,
    source: gap ? 'smaps_rollup' : 'pagemap',
    observer: excluded ? 'excluded' : 'included',
    swapPssApproximate: true,
    distinctPfns: tallyStats[TallyStat.DistinctPfns],
    elapsedMs: timings.total,
    timings,
  };
}

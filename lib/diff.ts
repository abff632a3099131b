// Memory over time: a snapshot reduced to a plain, JSON-safe sample (what
// `pagewalk record` writes, one per line), and the differences between two
// samples per process, per mapping and per group. Everything here is pure:
// samples in, changes out, so the same code serves watch(), top, record and
// diff, and can be checked without a process to measure.
import { addFigures, emptyFigures, type MemoryFigures, pssBytes } from './accounting';
import { ANONYMOUS, mappingName } from './proc/maps';
import type { GroupReport, ProcessReport, Snapshot } from './snapshot';

/** The figures a sample keeps, in bytes. */
export interface Figures {
  pss: number;
  uss: number;
  rss: number;
  swap: number;
  vss: number;
}

export const FIGURE_KEYS = ['pss', 'uss', 'rss', 'swap', 'vss'] as const;
export type FigureKey = (typeof FIGURE_KEYS)[number];

/** The mappings of one process that share a path, summed. */
export interface MappingSample extends Figures {
  /** The mapped file or pseudo-path ("[heap]", "[stack]"); anonymous mappings are "<anonymous>" (ANONYMOUS). */
  path: string;
  /** How many mappings (VMAs) have this path. */
  count: number;
}

export interface ProcessSample extends Figures {
  pid: number;
  /** Start time in clock ticks since boot: with the pid, it names the process across samples. */
  startTime: number;
  name: string;
  command: string;
  user: string;
  uid: number;
  /** Per path, when the snapshot had per-mapping figures. */
  mappings?: MappingSample[];
}

export const SAMPLE_FORMAT = 'pagewalk-sample';
export const SAMPLE_VERSION = 1;

/** One snapshot in plain JSON: a line of a record. */
export interface Sample {
  format: typeof SAMPLE_FORMAT;
  version: typeof SAMPLE_VERSION;
  /** When the snapshot began, ISO 8601 in UTC. */
  time: string;
  /** How long the snapshot took. */
  elapsedMs: number;
  source: 'pagemap' | 'smaps_rollup';
  /** Whether the measuring process's own mappings were taken out of the sharing counts (snapshot's excludeSelf). */
  observer: 'excluded' | 'included';
  processes: ProcessSample[];
  /** Processes that exited, were denied or changed while measured (left out of `processes`). */
  gone: number;
  /** /proc/meminfo when the snapshot was taken: sizes in bytes, counts as they are. */
  meminfo?: Record<string, number>;
  /** How `groups` were formed (snapshot's groupBy: 'name', 'exe', 'user', 'cgroup', or 'rules'). */
  groupBy?: string;
  /** The snapshot's groups, when it was grouped. */
  groups?: GroupSample[];
}

/** What records of pagewalk 0.1 called anonymous mappings: read as ANONYMOUS. */
const OLD_ANONYMOUS = '[anon]';

function figuresOf(f: Figures): Figures {
  return { pss: f.pss, uss: f.uss, rss: f.rss, swap: f.swap, vss: f.vss };
}

function zero(): Figures {
  return { pss: 0, uss: 0, rss: 0, swap: 0, vss: 0 };
}

function add(a: Figures, b: Figures): Figures {
  for (const k of FIGURE_KEYS) a[k] += b[k];
  return a;
}

function minus(a: Figures, b: Figures): Figures {
  const d = zero();
  for (const k of FIGURE_KEYS) d[k] = a[k] - b[k];
  return d;
}

/** The mappings of a process summed per path; PSS stays in the kernel's fixed point until the end. */
export function mappingsByPath(report: ProcessReport): MappingSample[] | undefined {
  if (!report.mappings) return undefined;
  const byPath = new Map<string, { figures: MemoryFigures; count: number }>();
  for (const m of report.mappings) {
    const path = mappingName(m.mapping);
    let t = byPath.get(path);
    if (!t) byPath.set(path, (t = { figures: emptyFigures(), count: 0 }));
    addFigures(t.figures, m);
    t.count++;
  }
  return [...byPath].map(([path, t]) => ({
    path,
    count: t.count,
    ...figuresOf({ ...t.figures, pss: pssBytes(t.figures.pssFixed) }),
  }));
}

export interface SampleExtras {
  /** When the snapshot began (default: its end minus its duration). */
  time?: Date;
  meminfo?: Record<string, number>;
  /** What the groups are grouped by ('name', 'exe', 'user', 'cgroup', 'rules'), and the snapshot's groups to keep. */
  groupBy?: string;
  groups?: GroupReport[];
}

/** A snapshot as a sample: plain numbers and strings, ready for JSON. */
export function sampleOf(snap: Snapshot, extras: SampleExtras = {}): Sample {
  const time = extras.time ?? new Date(Date.now() - snap.elapsedMs);
  return {
    format: SAMPLE_FORMAT,
    version: SAMPLE_VERSION,
    time: time.toISOString(),
    elapsedMs: Math.round(snap.elapsedMs),
    source: snap.source,
    observer: snap.observer,
    processes: snap.processes.map((p) => {
      const mappings = mappingsByPath(p);
      return {
        pid: p.pid,
        startTime: p.info.startTime,
        name: p.info.name,
        command: p.info.command,
        user: p.info.user,
        uid: p.info.uid,
        ...figuresOf(p),
        ...(mappings ? { mappings } : {}),
      };
    }),
    gone: snap.gone.length,
    ...(extras.meminfo ? { meminfo: extras.meminfo } : {}),
    ...(extras.groupBy && extras.groups
      ? {
          groupBy: extras.groupBy,
          groups: extras.groups.map((g) => ({
            key: g.name,
            pids: g.pids,
            only: g.only ?? undefined,
            ...figuresOf(g.totals),
          })),
        }
      : {}),
  };
}

// ------------------------------------------------------------------ reading records

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function checkFigures(o: Record<string, unknown>, where: string): void {
  for (const k of FIGURE_KEYS) if (!isCount(o[k])) throw new TypeError(`${where}: ${k} is not a number`);
}

/** Checks that a parsed JSON value is a sample; returns it typed. */
export function checkSample(value: unknown, where = 'sample'): Sample {
  const s = value as Record<string, unknown>;
  if (!s || typeof s !== 'object' || s.format !== SAMPLE_FORMAT)
    throw new TypeError(`${where}: not a pagewalk sample (no "format": "${SAMPLE_FORMAT}")`);
  if (s.version !== SAMPLE_VERSION)
    throw new TypeError(`${where}: sample version ${String(s.version)} (this pagewalk reads ${SAMPLE_VERSION})`);
  if (typeof s.time !== 'string' || Number.isNaN(Date.parse(s.time))) throw new TypeError(`${where}: bad time`);
  if (!Array.isArray(s.processes)) throw new TypeError(`${where}: processes is not an array`);
  for (const [i, p] of (s.processes as Record<string, unknown>[]).entries()) {
    const at = `${where}: processes[${i}]`;
    if (!p || typeof p !== 'object' || !isCount(p.pid) || !isCount(p.startTime) || typeof p.name !== 'string')
      throw new TypeError(`${at}: needs pid, startTime and name`);
    checkFigures(p, at);
    if (p.mappings !== undefined) {
      if (!Array.isArray(p.mappings)) throw new TypeError(`${at}: mappings is not an array`);
      for (const [j, m] of (p.mappings as Record<string, unknown>[]).entries()) {
        if (!m || typeof m.path !== 'string') throw new TypeError(`${at}.mappings[${j}]: no path`);
        checkFigures(m, `${at}.mappings[${j}]`);
        if (m.path === OLD_ANONYMOUS) m.path = ANONYMOUS;
      }
    }
  }
  if (s.groups !== undefined) {
    if (!Array.isArray(s.groups)) throw new TypeError(`${where}: groups is not an array`);
    for (const [i, g] of (s.groups as Record<string, unknown>[]).entries()) {
      if (!g || typeof g.key !== 'string' || !Array.isArray(g.pids))
        throw new TypeError(`${where}: groups[${i}]: needs key and pids`);
      checkFigures(g, `${where}: groups[${i}]`);
    }
  }
  return value as Sample;
}

/** The samples of a JSON Lines record (blank lines skipped). */
export function parseRecord(text: string, name = 'record'): Sample[] {
  const samples: Sample[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new SyntaxError(`${name}:${i + 1}: ${(err as Error).message}`);
    }
    samples.push(checkSample(value, `${name}:${i + 1}`));
  });
  return samples;
}

// ------------------------------------------------------------------ differences

export type ChangeStatus = 'grew' | 'shrank' | 'unchanged' | 'started' | 'exited';

export interface Change {
  /** Zeros for what started. */
  before: Figures;
  /** Zeros for what exited. */
  after: Figures;
  /** after - before, per figure. */
  delta: Figures;
  /** Judged on the figure the difference is sorted by (PSS by default). */
  status: ChangeStatus;
}

export interface MappingChange extends Change {
  path: string;
  countBefore: number;
  countAfter: number;
}

export interface ProcessChange extends Change {
  pid: number;
  startTime: number;
  name: string;
  command: string;
  user: string;
  /** Per path, when both samples had per-mapping figures (or the one the process is in). */
  mappings?: MappingChange[];
}

export interface GroupSample extends Figures {
  /** The group's name: a process name, user, cgroup ... */
  key: string;
  pids: number[];
  /** Memory only the group's processes map (what stopping them frees), when snapshot() grouped them with CAP_SYS_ADMIN. */
  only?: number;
}

export interface GroupChange extends Change {
  key: string;
  pidsBefore: number[];
  pidsAfter: number[];
  /**
   * The change in what the group alone maps (GroupSample.only), when the
   * samples it is in carry it: 0 stands for a sample it is not in.
   */
  only?: { before: number; after: number; delta: number };
}

export interface SampleDiff {
  from: string;
  to: string;
  /** Seconds between the two samples' start times. */
  seconds: number;
  /** The figure the lists are sorted by (largest change first). */
  sort: FigureKey;
  /** Every process of either sample, the largest change first. */
  processes: ProcessChange[];
  /** Sums over every process of either sample. */
  totals: Change;
  started: number;
  exited: number;
}

export interface DiffOptions {
  /** The figure to sort by and judge growth on. Default: 'pss'. */
  sort?: FigureKey;
}

function statusOf(
  before: Figures | undefined,
  after: Figures | undefined,
  delta: Figures,
  key: FigureKey,
): ChangeStatus {
  if (!before) return 'started';
  if (!after) return 'exited';
  return delta[key] > 0 ? 'grew' : delta[key] < 0 ? 'shrank' : 'unchanged';
}

function change(before: Figures | undefined, after: Figures | undefined, key: FigureKey): Change {
  const b = before ? figuresOf(before) : zero();
  const a = after ? figuresOf(after) : zero();
  const delta = minus(a, b);
  return { before: b, after: a, delta, status: statusOf(before, after, delta, key) };
}

/** Largest absolute change first; ties by what is larger now, then by `tie`. */
function byChange<T extends Change>(key: FigureKey, tie: (a: T, b: T) => number) {
  return (a: T, b: T) => Math.abs(b.delta[key]) - Math.abs(a.delta[key]) || b.after[key] - a.after[key] || tie(a, b);
}

/** Pairs up two lists by key: [key, before, after] in first-seen order. */
function pair<T>(before: T[], after: T[], keyOf: (t: T) => string): [string, T | undefined, T | undefined][] {
  const out = new Map<string, [string, T | undefined, T | undefined]>();
  for (const t of before) out.set(keyOf(t), [keyOf(t), t, undefined]);
  for (const t of after) {
    const k = keyOf(t);
    const e = out.get(k);
    if (e) e[2] = t;
    else out.set(k, [k, undefined, t]);
  }
  return [...out.values()];
}

/** The mappings of one process, path by path. */
export function diffMappings(
  before: MappingSample[] | undefined,
  after: MappingSample[] | undefined,
  options: DiffOptions = {},
): MappingChange[] {
  const key = options.sort ?? 'pss';
  const changes = pair(before ?? [], after ?? [], (m) => m.path).map(([path, b, a]) => ({
    path,
    countBefore: b?.count ?? 0,
    countAfter: a?.count ?? 0,
    ...change(b, a, key),
  }));
  return changes.sort(byChange(key, (x, y) => x.path.localeCompare(y.path)));
}

const processKey = (p: ProcessSample) => `${p.pid}:${p.startTime}`;

/**
 * What changed from one sample to the next, per process and, when both
 * carry them, per mapping path. A pid whose start time differs is another
 * process: the old one exited and the new one started.
 */
export function diffSamples(before: Sample, after: Sample, options: DiffOptions = {}): SampleDiff {
  const key = options.sort ?? 'pss';
  if (!FIGURE_KEYS.includes(key)) throw new RangeError(`options.sort must be one of ${FIGURE_KEYS.join(', ')}`);
  const withMappings = (s: Sample) => s.processes.some((p) => p.mappings !== undefined) || s.processes.length === 0;
  const mappings = withMappings(before) && withMappings(after);
  const processes: ProcessChange[] = pair(before.processes, after.processes, processKey).map(([, b, a]) => {
    const p = (a ?? b) as ProcessSample;
    return {
      pid: p.pid,
      startTime: p.startTime,
      name: p.name,
      command: p.command,
      user: p.user,
      ...change(b, a, key),
      ...(mappings ? { mappings: diffMappings(b?.mappings, a?.mappings, options) } : {}),
    };
  });
  processes.sort(byChange(key, (x, y) => x.pid - y.pid));
  const totalBefore = before.processes.reduce((t, p) => add(t, p), zero());
  const totalAfter = after.processes.reduce((t, p) => add(t, p), zero());
  const totals = change(totalBefore, totalAfter, key);
  return {
    from: before.time,
    to: after.time,
    seconds: (Date.parse(after.time) - Date.parse(before.time)) / 1000,
    sort: key,
    processes,
    totals,
    started: processes.filter((p) => p.status === 'started').length,
    exited: processes.filter((p) => p.status === 'exited').length,
  };
}

/** A sample's processes summed per name or user, or per key of your choice. */
export function groupSample(sample: Sample, by: 'name' | 'user' | ((p: ProcessSample) => string)): GroupSample[] {
  const keyOf = typeof by === 'function' ? by : (p: ProcessSample) => p[by];
  const groups = new Map<string, GroupSample>();
  for (const p of sample.processes) {
    const k = keyOf(p);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { key: k, pids: [], ...zero() }));
    g.pids.push(p.pid);
    add(g, p);
  }
  return [...groups.values()];
}

/** Groups of two samples, group by group, the largest change first. */
export function diffGroups(before: GroupSample[], after: GroupSample[], options: DiffOptions = {}): GroupChange[] {
  const key = options.sort ?? 'pss';
  return pair(before, after, (g) => g.key)
    .map(([k, b, a]): GroupChange => {
      const c: GroupChange = { key: k, pidsBefore: b?.pids ?? [], pidsAfter: a?.pids ?? [], ...change(b, a, key) };
      // Both sides must know it (a side the group is missing from counts as 0).
      if ((b === undefined || b.only !== undefined) && (a === undefined || a.only !== undefined)) {
        const before = b?.only ?? 0;
        const after = a?.only ?? 0;
        c.only = { before, after, delta: after - before };
      }
      return c;
    })
    .sort(byChange(key, (x, y) => x.key.localeCompare(y.key)));
}

#!/usr/bin/env node
// The pagewalk command: smem's reports with kernel-exact figures, charts,
// per-mapping and per-library views, raw page states, group accounting and
// a picture of an address space.
import * as fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addFigures, emptyFigures, type MemoryFigures, processMemory } from './accounting';
import { decodeEntry, openPagemap, type PagemapHandle, PM_FLAG_MASK, runLengths, ScanCategory } from './pagemap';
import {
  addEntries,
  addPages,
  barChartSvg,
  type Column,
  formatSize,
  hex,
  iec,
  movePages,
  newBand,
  PageState,
  type PictureBand,
  pictureSvg,
  pieChartSvg,
  renderCsv,
  renderTable,
  terminalBars,
  terminalPie,
  type UnitStyle,
} from './render';
import { type ProcessInfo, type ProcessReport, type Snapshot, type SnapshotOptions, snapshot } from './snapshot';
import { walk } from './walk';

// ------------------------------------------------------------------ errors

/** An error the user can act on: printed as one line, exits with `code`. */
class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const EXIT_RUNTIME = 1;
const EXIT_USAGE = 2;
const EXIT_NOT_FOUND = 3;

const usage = (message: string) => new CliError(message, EXIT_USAGE);
const PRIVILEGE = 'needs CAP_SYS_ADMIN (run as root)';

function parsePid(text: string): number {
  if (!/^\d+$/.test(text)) throw usage(`invalid pid "${text}"`);
  const pid = Number(text);
  if (pid < 1 || pid > 4_194_304) throw usage(`invalid pid "${text}"`);
  if (!fs.existsSync(`/proc/${pid}/stat`)) throw new CliError(`no such process: ${pid}`, EXIT_NOT_FOUND);
  return pid;
}

function parseRegex(text: string | undefined): RegExp | undefined {
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (err) {
    throw usage(`invalid regex "${text}": ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** Turns errors from lib/ into the one-line message and exit code they deserve. */
function explain(err: unknown, pid?: number): CliError {
  if (err instanceof CliError) return err;
  const e = err as NodeJS.ErrnoException;
  if ((e.code === 'ENOENT' || e.code === 'ESRCH') && pid !== undefined)
    return new CliError(`no such process: ${pid}`, EXIT_NOT_FOUND);
  if (e.code === 'EPERM' || e.code === 'EACCES') {
    const what = e.path ?? (pid !== undefined ? `/proc/${pid}` : 'this');
    return new CliError(`permission denied reading ${what}: ${PRIVILEGE}`, EXIT_RUNTIME);
  }
  return new CliError(e.message ?? String(err), EXIT_RUNTIME);
}

// ------------------------------------------------------------------ output

/** Writes to stdout, waiting for the pipe to drain so large outputs stay bounded. */
class Output {
  #buffer = '';
  async write(s: string): Promise<void> {
    this.#buffer += s;
    if (this.#buffer.length > 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    const s = this.#buffer;
    this.#buffer = '';
    if (s && !process.stdout.write(s)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}

function warn(message: string): void {
  process.stderr.write(`pagewalk: warning: ${message}\n`);
}

/** A progress bar on stderr, shown only for scans that last and only on a terminal. */
function progress(): { onProgress: (done: number, total: number) => void; end: () => void } {
  const began = performance.now();
  let shown = false;
  let drawn = -1;
  const tty = process.stderr.isTTY === true;
  return {
    onProgress(done, total) {
      if (!tty || performance.now() - began < 300) return;
      const width = 30;
      // Redraw only when the bar moves: thousands of processes, thirty steps.
      const step = total ? Math.floor((done / total) * width) : width;
      if (step === drawn && done !== total) return;
      drawn = step;
      process.stderr.write(`\r[${'#'.repeat(step)}${' '.repeat(width - step)}] ${done}/${total} processes`);
      shown = true;
    },
    end() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

async function measure(options: SnapshotOptions): Promise<Snapshot> {
  const bar = progress();
  try {
    return await snapshot({ ...options, onProgress: bar.onProgress });
  } finally {
    bar.end();
  }
}

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\S+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * (line.endsWith('kB') ? 1024 : 1);
  }
  return out;
}

// ------------------------------------------------------------------ reports

type Value = string | number;
type Row = Record<string, Value>;

interface FieldDef {
  header: string;
  kind: 'size' | 'int' | 'text';
  /** How the totals row combines the column. */
  total: 'sum' | 'count' | 'distinct' | 'none';
  maxWidth?: number;
  /** Percentages of this column are of swap, not of RAM. */
  ofSwap?: boolean;
}

interface Report {
  name: string;
  fields: Record<string, FieldDef>;
  defaultColumns: string;
  defaultSort: string;
  rows: Row[];
}

const SIZE = (header: string, extra: Partial<FieldDef> = {}): FieldDef => ({
  header,
  kind: 'size',
  total: 'sum',
  ...extra,
});

const PROCESS_FIELDS: Record<string, FieldDef> = {
  pid: { header: 'PID', kind: 'int', total: 'count' },
  user: { header: 'User', kind: 'text', total: 'distinct' },
  command: { header: 'Command', kind: 'text', total: 'none', maxWidth: 40 },
  name: { header: 'Name', kind: 'text', total: 'none', maxWidth: 24 },
  maps: { header: 'Maps', kind: 'int', total: 'sum' },
  swap: SIZE('Swap', { ofSwap: true }),
  uss: SIZE('USS'),
  pss: SIZE('PSS'),
  rss: SIZE('RSS'),
  vss: SIZE('VSS'),
};

const MAP_FIELDS: Record<string, FieldDef> = {
  map: { header: 'Map', kind: 'text', total: 'count', maxWidth: 48 },
  count: { header: 'Count', kind: 'int', total: 'sum' },
  pids: { header: 'PIDs', kind: 'int', total: 'sum' },
  swap: SIZE('Swap', { ofSwap: true }),
  uss: SIZE('USS'),
  pss: SIZE('PSS'),
  rss: SIZE('RSS'),
  vss: SIZE('VSS'),
  avgpss: SIZE('AVGPSS'),
};

const USER_FIELDS: Record<string, FieldDef> = {
  user: { header: 'User', kind: 'text', total: 'count' },
  count: { header: 'Count', kind: 'int', total: 'sum' },
  swap: SIZE('Swap', { ofSwap: true }),
  uss: SIZE('USS'),
  pss: SIZE('PSS'),
  rss: SIZE('RSS'),
  vss: SIZE('VSS'),
};

const SYSTEM_FIELDS: Record<string, FieldDef> = {
  area: { header: 'Area', kind: 'text', total: 'none' },
  used: SIZE('Used'),
  cache: SIZE('Cache'),
  noncache: SIZE('Noncache'),
  measured: SIZE('Measured'),
};

interface SmemOptions {
  columns?: string;
  processfilter?: string;
  userfilter?: string;
  mapfilter?: string;
  mappings?: boolean;
  users?: boolean;
  system?: boolean;
  totals?: boolean;
  abbreviate?: boolean;
  percent?: boolean;
  sort?: string;
  reverse?: boolean;
  numeric?: boolean;
  header: boolean;
  json?: boolean;
  csv?: boolean;
  bar?: string;
  pie?: string;
  output?: string;
}

function figuresRow(f: MemoryFigures): Row {
  return { swap: f.swap, uss: f.uss, pss: f.pss, rss: f.rss, vss: f.vss };
}

/** Sums the mappings whose path matches, keeping PSS in fixed point until the end. */
function mappingSum(p: ProcessReport, re: RegExp): { figures: MemoryFigures; count: number } {
  const figures = emptyFigures();
  let count = 0;
  for (const m of p.mappings ?? []) {
    if (!re.test(m.mapping.path || '<anonymous>')) continue;
    addFigures(figures, m);
    count++;
  }
  return { figures, count };
}

function processFilter(o: { processfilter?: string; userfilter?: string }): (p: ProcessInfo) => boolean {
  const pre = parseRegex(o.processfilter);
  const ure = parseRegex(o.userfilter);
  // smem leaves out what has no mappings: kernel threads.
  return (p) => !p.kernelThread && (!pre || pre.test(p.name) || pre.test(p.command)) && (!ure || ure.test(p.user));
}

/** Processes left out for want of privilege; as root the advice would not help, so none are counted. */
function deniedCount(snap: Snapshot): number {
  if (process.geteuid?.() === 0) return 0;
  return snap.gone.filter((g) => g.reason === 'denied').length;
}

function checkExact(snap: Snapshot, needMappings: boolean): void {
  if (snap.source !== 'pagemap') {
    if (needMappings) throw new CliError(`per-mapping figures ${PRIVILEGE}`, EXIT_RUNTIME);
    warn(`not running as root (no CAP_SYS_ADMIN): RSS/PSS/USS come from smaps_rollup, exact figures ${PRIVILEGE}`);
  }
  const denied = deniedCount(snap);
  if (denied) warn(`${denied} processes could not be read (permission denied) and are left out: run as root`);
}

function terminalWidth(): number {
  // Under script(1) or a fresh pty the size may read as 0.
  return process.stdout.columns || Number(process.env.COLUMNS) || 80;
}

async function smemReport(o: SmemOptions): Promise<Report> {
  const mapRe = parseRegex(o.mapfilter);
  const filter = processFilter(o);
  if (o.system) {
    const snap = await measure({ filter: (p) => !p.kernelThread });
    checkExact(snap, false);
    const m = meminfo();
    const total = m.MemTotal ?? 0;
    const free = m.MemFree ?? 0;
    const user = (m.AnonPages ?? 0) + (m.Mapped ?? 0);
    const kernelCache = (m.Buffers ?? 0) + (m.SReclaimable ?? 0) + Math.max(0, (m.Cached ?? 0) - (m.Mapped ?? 0));
    const pss = snap.processes.reduce((a, p) => a + p.pss, 0);
    const rows: Row[] = [
      {
        area: 'kernel dynamic memory',
        used: total - free - user,
        cache: kernelCache,
        noncache: total - free - user - kernelCache,
        measured: '',
      },
      { area: 'userspace memory', used: user, cache: m.Mapped ?? 0, noncache: m.AnonPages ?? 0, measured: pss },
      { area: 'free memory', used: free, cache: free, noncache: 0, measured: '' },
    ];
    rows.forEach((r, i) => {
      r.order = i;
    });
    return {
      name: 'system',
      fields: SYSTEM_FIELDS,
      defaultColumns: 'area used cache noncache measured',
      defaultSort: 'order',
      rows,
    };
  }
  const needMappings = Boolean(mapRe || o.mappings);
  // Per-mapping figures cost little; the mapping count needs them, so JSON always has it.
  const wantMaps = Boolean(o.json) || (o.columns ?? '').split(/\s+/).includes('maps');
  const snap = await measure({ filter, mappings: needMappings || wantMaps });
  checkExact(snap, needMappings);
  if (o.mappings) {
    const byPath = new Map<string, { f: MemoryFigures; count: number; pids: Set<number> }>();
    for (const p of snap.processes) {
      for (const m of p.mappings ?? []) {
        const path = m.mapping.path || '<anonymous>';
        if (mapRe && !mapRe.test(path)) continue;
        let t = byPath.get(path);
        if (!t) byPath.set(path, (t = { f: emptyFigures(), count: 0, pids: new Set() }));
        addFigures(t.f, m);
        t.count++;
        t.pids.add(p.pid);
      }
    }
    const rows = [...byPath].map(([path, t]) => ({
      map: path,
      count: t.count,
      pids: t.pids.size,
      ...figuresRow(t.f),
      avgpss: Math.floor(t.f.pss / t.pids.size),
    }));
    return {
      name: 'mappings',
      fields: MAP_FIELDS,
      defaultColumns: 'map pids swap uss pss rss vss',
      defaultSort: 'pss',
      rows,
    };
  }
  const rows: Row[] = [];
  // Without privilege the per-mapping figures are dropped: no count to give.
  const mapsKnown = snap.source === 'pagemap' && (needMappings || wantMaps);
  for (const p of snap.processes) {
    let f: MemoryFigures = p;
    let maps = p.mappings?.length ?? 0;
    if (mapRe) {
      const s = mappingSum(p, mapRe);
      if (s.count === 0) continue;
      f = s.figures;
      maps = s.count;
    }
    rows.push({
      pid: p.pid,
      user: o.numeric ? p.info.uid : p.info.user,
      uid: p.info.uid,
      command: p.info.command,
      name: p.info.name,
      ...(mapsKnown ? { maps } : {}),
      ...figuresRow(f),
    });
  }
  if (o.users) {
    const byUser = new Map<Value, Row>();
    for (const r of rows) {
      const t = byUser.get(r.user) ?? { user: r.user, count: 0, swap: 0, uss: 0, pss: 0, rss: 0, vss: 0 };
      for (const k of ['swap', 'uss', 'pss', 'rss', 'vss']) (t[k] as number) += r[k] as number;
      (t.count as number)++;
      byUser.set(r.user, t);
    }
    return {
      name: 'users',
      fields: USER_FIELDS,
      defaultColumns: 'user count swap uss pss rss',
      defaultSort: 'pss',
      rows: [...byUser.values()],
    };
  }
  return {
    name: 'processes',
    fields: PROCESS_FIELDS,
    defaultColumns: 'pid user command swap uss pss rss',
    defaultSort: 'pss',
    rows,
  };
}

function checkColumns(report: Report, columns: string[]): void {
  for (const c of columns) {
    if (!(c in report.fields)) throw usage(`unknown column "${c}" (known: ${Object.keys(report.fields).join(' ')})`);
  }
}

function sortRows(report: Report, key: string, reverse: boolean): Row[] {
  if (!(key in report.fields) && key !== 'order')
    throw usage(`unknown sort field "${key}" (known: ${Object.keys(report.fields).join(' ')})`);
  // Ascending like smem: the largest ends up last, next to the prompt.
  const rows = [...report.rows].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return c || Number(a.pid ?? 0) - Number(b.pid ?? 0);
  });
  return reverse ? rows.reverse() : rows;
}

function totalsOf(report: Report, columns: string[], rows: Row[]): Row {
  const t: Row = {};
  for (const c of columns) {
    const f = report.fields[c];
    if (f.total === 'sum') t[c] = rows.reduce((a, r) => a + (typeof r[c] === 'number' ? (r[c] as number) : 0), 0);
    else if (f.total === 'count') t[c] = rows.length;
    else if (f.total === 'distinct') t[c] = new Set(rows.map((r) => r[c])).size;
    else t[c] = '';
  }
  return t;
}

async function smemCommand(o: SmemOptions): Promise<void> {
  if (o.json && o.csv) throw usage('--json and --csv exclude each other');
  if (o.abbreviate && o.percent) throw usage('-k and -p exclude each other');
  if ([o.mappings, o.users, o.system].filter(Boolean).length > 1) throw usage('-m, -u and -w exclude each other');
  if (o.bar && o.pie) throw usage('--bar and --pie exclude each other');
  // Check the columns before the (slow) measurement, with the report's field names.
  const fields = o.system ? SYSTEM_FIELDS : o.mappings ? MAP_FIELDS : o.users ? USER_FIELDS : PROCESS_FIELDS;
  const probe: Report = { name: '', fields, defaultColumns: '', defaultSort: '', rows: [] };
  if (o.columns !== undefined) checkColumns(probe, o.columns.split(/\s+/).filter(Boolean));
  for (const f of [o.bar, o.pie, o.sort]) if (f !== undefined) checkColumns(probe, [f]);
  parseRegex(o.processfilter);
  parseRegex(o.userfilter);
  parseRegex(o.mapfilter);

  const report = await smemReport(o);
  const columns = (o.columns ?? (o.bar || o.pie ? '' : report.defaultColumns)).split(/\s+/).filter(Boolean);
  const sort = o.sort ?? report.defaultSort;
  const rows = sortRows(report, sort, Boolean(o.reverse));
  const m = meminfo();
  const style: UnitStyle = o.abbreviate ? 'human' : o.percent ? 'percent' : 'kb';
  const cell = (c: string, v: Value | undefined): string =>
    v === undefined
      ? ''
      : report.fields[c].kind === 'size' && typeof v === 'number'
        ? formatSize(v, style, report.fields[c].ofSwap ? (m.SwapTotal ?? 0) : (m.MemTotal ?? 0))
        : String(v);

  if (o.bar || o.pie) return chart(report, rows, columns, sort, o);

  const out = new Output();
  if (o.json) {
    const body: Record<string, unknown> = {
      [report.name]: rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'order'))),
    };
    if (o.totals) body.totals = totalsOf(report, columns, rows);
    body.units = 'bytes';
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else if (o.csv) {
    const table = rows.map((r) => columns.map((c) => cell(c, r[c])));
    if (o.totals) {
      const t = totalsOf(report, columns, rows);
      table.push(columns.map((c) => cell(c, t[c])));
    }
    await out.write(renderCsv(o.header ? columns.map((c) => report.fields[c].header) : null, table));
  } else {
    const cols: Column[] = columns.map((c) => ({
      header: report.fields[c].header,
      align: report.fields[c].kind === 'text' ? 'left' : 'right',
      maxWidth: report.fields[c].maxWidth,
    }));
    const t = o.totals ? totalsOf(report, columns, rows) : undefined;
    await out.write(
      renderTable(
        cols,
        rows.map((r) => columns.map((c) => cell(c, r[c]))),
        { header: o.header, totals: t && columns.map((c) => cell(c, t[c])) },
      ),
    );
  }
  await out.flush();
}

const CHART_LIMIT = 24;

async function chart(report: Report, sorted: Row[], columns: string[], sort: string, o: SmemOptions): Promise<void> {
  // Charts keep the largest rows by the sort field: dozens of bars are unreadable.
  let rows = sorted;
  if (o.bar && rows.length > CHART_LIMIT) {
    const keep = new Set([...rows].sort((a, b) => Number(b[sort]) - Number(a[sort])).slice(0, CHART_LIMIT));
    rows = rows.filter((r) => keep.has(r));
  }
  const more = sorted.length > rows.length ? ` (largest ${rows.length} of ${sorted.length})` : '';
  const label = (r: Row, f: string) => String(r[f]);
  let svg: string;
  let text: string;
  if (o.bar) {
    const series = (columns.length ? columns : ['pss']).filter((c) => report.fields[c].kind === 'size');
    if (series.length === 0) throw usage('--bar needs size columns in -c (swap uss pss rss vss)');
    const c = {
      title: `${series.join(', ')} by ${o.bar}${more}`,
      labels: rows.map((r) => label(r, o.bar as string)),
      series: series.map((s) => ({ name: report.fields[s].header, values: rows.map((r) => Number(r[s])) })),
    };
    svg = barChartSvg(c);
    text = terminalBars(c, terminalWidth());
  } else {
    const pie = o.pie as string;
    if (report.fields[sort].kind !== 'size') throw usage(`--pie needs a size sort field (-s), not "${sort}"`);
    // Rows with the same label (processes of one name) make one slice.
    const byLabel = new Map<string, number>();
    for (const r of rows) byLabel.set(label(r, pie), (byLabel.get(label(r, pie)) ?? 0) + Number(r[sort]));
    const c = {
      title: `${report.fields[sort].header} by ${pie}`,
      labels: [...byLabel.keys()],
      values: [...byLabel.values()],
    };
    svg = pieChartSvg(c);
    text = terminalPie(c, terminalWidth());
  }
  if (o.output) fs.writeFileSync(o.output, svg);
  else process.stdout.write(process.stdout.isTTY ? text : svg);
}

// ------------------------------------------------------------------ show PID

interface ShowOptions {
  abbreviate?: boolean;
  json?: boolean;
  sort?: string;
  reverse?: boolean;
  header: boolean;
}

const SHOW_SIZES = ['vss', 'rss', 'pss', 'uss', 'shared', 'swap'] as const;

async function showCommand(pidText: string, o: ShowOptions): Promise<void> {
  const pid = parsePid(pidText);
  if (o.sort !== undefined && !(SHOW_SIZES as readonly string[]).includes(o.sort)) {
    throw usage(`unknown sort field "${o.sort}" (known: ${SHOW_SIZES.join(' ')})`);
  }
  let pm: Awaited<ReturnType<typeof processMemory>>;
  try {
    pm = await processMemory(pid, { mappings: true });
  } catch (err) {
    throw explain(err, pid);
  }
  if (!pm.mappings) throw new CliError(`per-mapping figures ${PRIVILEGE}`, EXIT_RUNTIME);
  let maps = pm.mappings;
  if (o.sort) {
    const k = o.sort as (typeof SHOW_SIZES)[number];
    maps = [...maps].sort((a, b) => a[k] - b[k]);
    if (o.reverse) maps.reverse();
  }
  const out = new Output();
  if (o.json) {
    const shape = (f: MemoryFigures) => Object.fromEntries(SHOW_SIZES.map((k) => [k, f[k]]));
    const body = {
      pid,
      source: pm.source,
      partial: pm.partial,
      totals: shape(pm),
      mappings: maps.map((m) => ({
        start: hex(m.mapping.start),
        end: hex(m.mapping.end),
        perms: m.mapping.perms,
        path: m.mapping.path,
        ...shape(m),
      })),
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const cols: Column[] = [
      { header: 'Address', align: 'left' },
      { header: 'Perm', align: 'left' },
      ...['Virtual', 'RSS', 'PSS', 'USS', 'Shared', 'Swap'].map((h): Column => ({ header: h, align: 'right' })),
      { header: 'Object', align: 'left' },
    ];
    const rows = maps.map((m) => [
      `${m.mapping.start.toString(16)}-${m.mapping.end.toString(16)}`,
      m.mapping.perms,
      ...SHOW_SIZES.map((k) => formatSize(m[k], style)),
      m.mapping.path || '[anon]',
    ]);
    const totals = ['', '', ...SHOW_SIZES.map((k) => formatSize(pm[k], style)), `TOTAL (${maps.length} mappings)`];
    await out.write(renderTable(cols, rows, { header: o.header, totals }));
  }
  await out.flush();
}

// ------------------------------------------------------------------ libs

interface LibsOptions {
  processfilter?: string;
  userfilter?: string;
  mapfilter?: string;
  abbreviate?: boolean;
  json?: boolean;
  header: boolean;
  all?: boolean;
}

async function libsCommand(o: LibsOptions): Promise<void> {
  const mapRe = parseRegex(o.mapfilter);
  const snap = await measure({ filter: processFilter(o), mappings: true });
  checkExact(snap, true);
  interface Lib {
    path: string;
    f: MemoryFigures;
    procs: Map<number, { name: string; f: MemoryFigures }>;
  }
  const libs = new Map<string, Lib>();
  for (const p of snap.processes) {
    for (const m of p.mappings ?? []) {
      // librank ranks files; anonymous and pseudo mappings only with --all.
      const path = m.mapping.path || '[anon]';
      if (!o.all && !path.startsWith('/')) continue;
      if (mapRe && !mapRe.test(path)) continue;
      let lib = libs.get(path);
      if (!lib) libs.set(path, (lib = { path, f: emptyFigures(), procs: new Map() }));
      addFigures(lib.f, m);
      let pr = lib.procs.get(p.pid);
      if (!pr) lib.procs.set(p.pid, (pr = { name: p.info.name, f: emptyFigures() }));
      addFigures(pr.f, m);
    }
  }
  const sorted = [...libs.values()].sort((a, b) => b.f.pss - a.f.pss || a.path.localeCompare(b.path));
  const out = new Output();
  if (o.json) {
    const fig = (f: MemoryFigures) => ({ rss: f.rss, pss: f.pss, uss: f.uss, swap: f.swap });
    const body = {
      libraries: sorted.map((l) => ({
        path: l.path,
        ...fig(l.f),
        processes: [...l.procs]
          .sort((a, b) => b[1].f.pss - a[1].f.pss)
          .map(([pid, pr]) => ({ pid, name: pr.name, ...fig(pr.f) })),
      })),
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const cols: Column[] = [
      ...['RSS', 'PSS', 'USS', 'Swap'].map((h): Column => ({ header: h, align: 'right' })),
      { header: 'Library / Process', align: 'left' },
    ];
    const rows: string[][] = [];
    const sizes = (f: MemoryFigures) => [f.rss, f.pss, f.uss, f.swap].map((v) => formatSize(v, style));
    for (const l of sorted) {
      rows.push([...sizes(l.f), l.path]);
      for (const [pid, pr] of [...l.procs].sort((a, b) => b[1].f.pss - a[1].f.pss))
        rows.push([...sizes(pr.f), `  ${pr.name} [${pid}]`]);
    }
    await out.write(renderTable(cols, rows, { header: o.header }));
  }
  await out.flush();
}

// ------------------------------------------------------------------ pages

interface PagesOptions {
  runs?: boolean;
  json?: boolean;
}

function parseRange(text: string): [bigint, bigint] {
  const m = /^(?:0x)?([0-9a-f]+)-(?:0x)?([0-9a-f]+)$/i.exec(text);
  if (!m) throw usage(`invalid range "${text}" (expected hex START-END, e.g. 7f0000000000-7f0000100000)`);
  const start = BigInt(`0x${m[1]}`) & ~0xfffn;
  const end = (BigInt(`0x${m[2]}`) + 0xfffn) & ~0xfffn;
  if (end <= start) throw usage(`invalid range "${text}": END must be above START`);
  if (end > 1n << 64n) throw usage(`invalid range "${text}": beyond the 64-bit address space`);
  return [start, end];
}

interface Stretch {
  address: bigint;
  pages: number;
  entries: BigUint64Array | null;
}

/** Reads an explicit range chunk by chunk, jumping over empty stretches with PAGEMAP_SCAN. */
async function* rangeStretches(handle: PagemapHandle, start: bigint, end: bigint): AsyncGenerator<Stretch> {
  const chunk = 65536;
  const buffer = new BigUint64Array(chunk);
  let address = start;
  while (address < end) {
    const pages = Math.min(chunk, Number((end - address) >> 12n));
    const entries = await handle.readAsync(address, pages, buffer);
    if (entries.length === 0) return;
    const after = address + (BigInt(entries.length) << 12n);
    if (entries.some((e) => e !== 0n)) {
      yield { address, pages: entries.length, entries };
      address = after;
      continue;
    }
    const next = after < end ? (handle.nextPopulated(after, end) ?? after) : after;
    yield { address, pages: Number((next - address) >> 12n), entries: null };
    address = next;
  }
}

const FLAG_NAMES: [bigint, string][] = [
  [1n << 63n, 'present'],
  [1n << 62n, 'swapped'],
  [1n << 61n, 'file'],
  [1n << 58n, 'guard'],
  [1n << 57n, 'uffd-wp'],
  [1n << 56n, 'exclusive'],
  [1n << 55n, 'soft-dirty'],
];

function flagList(state: bigint): string[] {
  return FLAG_NAMES.filter(([bit]) => (state & bit) !== 0n).map(([, n]) => n);
}

async function pagesCommand(pidText: string, rangeText: string | undefined, o: PagesOptions): Promise<void> {
  const pid = parsePid(pidText);
  const range = rangeText === undefined ? undefined : parseRange(rangeText);
  const out = new Output();
  let handle: PagemapHandle | undefined;
  let source: AsyncGenerator<Stretch>;
  try {
    if (range) {
      handle = openPagemap(pid);
      source = rangeStretches(handle, range[0], range[1]);
    } else {
      source = (async function* () {
        for await (const c of walk(pid)) yield { address: c.address, pages: c.pages, entries: c.entries };
      })();
    }
    let sawPresent = false;
    let sawPfn = false;
    let first = true;
    if (o.json) await out.write('[');
    const sep = async () => {
      await out.write(first ? '\n' : ',\n');
      first = false;
    };
    // Runs merge across chunk boundaries when contiguous and in the same state.
    let run: { start: bigint; pages: number; state: bigint } | null = null;
    const emitRun = async () => {
      if (!run) return;
      const end = run.start + (BigInt(run.pages) << 12n);
      const flags = flagList(run.state);
      if (o.json) {
        await sep();
        await out.write(JSON.stringify({ start: hex(run.start), end: hex(end), pages: run.pages, flags }));
      } else {
        await out.write(
          `${hex(run.start).padEnd(18)} ${hex(end).padEnd(18)} ${String(run.pages).padStart(10)}  ${flags.join(',') || 'none'}\n`,
        );
      }
      run = null;
    };
    const addRun = async (start: bigint, pages: number, state: bigint) => {
      if (run && run.state === state && run.start + (BigInt(run.pages) << 12n) === start) {
        run.pages += pages;
        return;
      }
      await emitRun();
      run = { start, pages, state };
    };
    if (o.runs && !o.json)
      await out.write(`${'START'.padEnd(18)} ${'END'.padEnd(18)} ${'PAGES'.padStart(10)}  STATE\n`);
    if (!o.runs && !o.json) await out.write(`${'ADDRESS'.padEnd(18)} ${'FLAGS'.padEnd(42)} PFN/SWAP\n`);
    for await (const s of source) {
      if (s.entries === null) {
        if (o.runs) await addRun(s.address, s.pages, 0n);
        else if (o.json) {
          await sep();
          await out.write(JSON.stringify({ address: hex(s.address), pages: s.pages, flags: [] }));
        } else {
          await out.write(`${hex(s.address).padEnd(18)} ${`(${s.pages} pages not present)`.padEnd(42)}\n`);
        }
        continue;
      }
      if (o.runs) {
        const r = runLengths(s.entries);
        for (let i = 0; i < r.count; i++) {
          const idx = r.triples[3 * i];
          const len = Number(r.triples[3 * i + 1]);
          const state = r.triples[3 * i + 2];
          if (state & (1n << 63n)) {
            sawPresent = true;
            if (s.entries[Number(idx)] & ((1n << 55n) - 1n)) sawPfn = true;
          }
          await addRun(s.address + (idx << 12n), len, state & PM_FLAG_MASK);
        }
        continue;
      }
      for (let i = 0; i < s.entries.length; i++) {
        const d = decodeEntry(s.entries[i]);
        const address = s.address + (BigInt(i) << 12n);
        if (d.present) {
          sawPresent = true;
          if (d.pfn) sawPfn = true;
        }
        const flags = flagList(s.entries[i]);
        const where = d.present
          ? `pfn=${hex(d.pfn ?? 0n)}`
          : d.swapped
            ? `swap=${d.swapType}:${hex(d.swapOffset ?? 0n)}`
            : '';
        if (o.json) {
          await sep();
          await out.write(
            JSON.stringify({
              address: hex(address),
              flags,
              pfn: d.pfn === null ? null : Number(d.pfn),
              swapType: d.swapType,
              swapOffset: d.swapOffset === null ? null : Number(d.swapOffset),
            }),
          );
        } else {
          await out.write(`${hex(address).padEnd(18)} ${(flags.join(',') || 'none').padEnd(42)} ${where}\n`);
        }
      }
    }
    await emitRun();
    if (o.json) await out.write(first ? ']\n' : '\n]\n');
    await out.flush();
    if (sawPresent && !sawPfn && !o.runs) warn(`PFNs read as 0: showing them ${PRIVILEGE}`);
  } catch (err) {
    throw explain(err, pid);
  } finally {
    handle?.close();
  }
}

// ------------------------------------------------------------------ group

interface GroupOptions {
  processfilter: string;
  userfilter?: string;
  abbreviate?: boolean;
  json?: boolean;
}

async function groupCommand(o: GroupOptions): Promise<void> {
  const pre = parseRegex(o.processfilter) as RegExp;
  const ure = parseRegex(o.userfilter);
  const member = (p: ProcessInfo) => (pre.test(p.name) || pre.test(p.command)) && (!ure || ure.test(p.user));
  let snap: Snapshot;
  try {
    // Every process is measured: "shared with outside" needs the outside.
    snap = await measure({
      filter: (p) => !p.kernelThread,
      groups: [{ name: o.processfilter, match: member }],
      unprivileged: 'error',
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EPERM') throw new CliError(`group accounting ${PRIVILEGE}`, EXIT_RUNTIME);
    throw explain(err);
  }
  const g = snap.groups[0];
  if (g.pids.length === 0) {
    // Unreadable processes may be the ones asked for: say what is missing rather than "no match".
    const denied = deniedCount(snap);
    if (denied)
      throw new CliError(`group accounting ${PRIVILEGE}: ${denied} processes could not be read`, EXIT_RUNTIME);
    throw new CliError(`no process matches /${o.processfilter}/`, EXIT_NOT_FOUND);
  }
  const members = snap.processes.filter((p) => g.pids.includes(p.pid));
  const out = new Output();
  if (o.json) {
    const body = {
      group: g.name,
      pids: g.pids,
      processes: members.map((p) => ({
        pid: p.pid,
        command: p.info.command,
        uss: p.uss,
        pss: p.pss,
        rss: p.rss,
        swap: p.swap,
      })),
      only: g.only,
      sharedOutside: g.sharedOutside,
      distinct: g.distinct,
      pss: g.totals.pss,
      uss: g.totals.uss,
      rss: g.totals.rss,
      swap: g.totals.swap,
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const unit = style === 'kb' ? ' kB' : '';
    const sz = (v: number) => `${formatSize(v, style)}${unit}`;
    const rows = [
      ['Group', `/${g.name}/`, ''],
      ['Processes', String(g.pids.length), members.map((p) => `${p.pid} ${p.info.name}`).join(', ')],
      ['Group USS', sz(g.only), 'held by these processes alone: what stopping them all frees'],
      ['Shared outside', sz(g.sharedOutside), 'resident memory they share with other processes'],
      ['Distinct RSS', sz(g.distinct), 'resident memory they map, each page once'],
      ['Sum of PSS', sz(g.totals.pss), 'their proportional share'],
      ['Sum of USS', sz(g.totals.uss), 'what each alone holds, summed (misses pages shared within the group)'],
      ['Sum of RSS', sz(g.totals.rss), 'counts shared pages once per process'],
    ];
    await out.write(
      renderTable(
        [
          { header: '', align: 'left' },
          { header: '', align: 'right' },
          { header: '', align: 'left' },
        ],
        rows,
        { header: false },
      ),
    );
  }
  await out.flush();
}

// ------------------------------------------------------------------ picture

async function pictureCommand(pidText: string, o: { output?: string }): Promise<void> {
  const pid = parsePid(pidText);
  const bands: PictureBand[] = [];
  let handle: PagemapHandle | undefined;
  let command = '';
  try {
    command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    let current = -1;
    for await (const c of walk(pid)) {
      // walk() skips nothing but mappings with no chunk at all ([vsyscall]); keep their bands too.
      while (bands.length <= c.mappingIndex) bands.push(undefined as unknown as PictureBand);
      if (c.mappingIndex !== current) {
        current = c.mappingIndex;
        bands[current] = newBand(c.mapping.start, c.mapping.end, c.mapping.perms, c.mapping.path);
      }
      const band = bands[current];
      const first = Number((c.address - c.mapping.start) >> 12n);
      if (c.entries) addEntries(band, first, c.entries);
      else addPages(band, first, c.pages, PageState.None);
    }
    // Zero-page mappings read as present and not exclusive: move them out of "shared".
    handle = openPagemap(pid);
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter(Boolean);
    maps.forEach((line, i) => {
      const [range, perms, , , , ...rest] = line.split(/\s+/);
      const [s, e] = range.split('-').map((x) => BigInt(`0x${x}`));
      if (!bands[i] || bands[i].start !== s) bands[i] = newBand(s, e, perms, rest.join(' '));
      if (s >= 1n << 63n) return;
      const r = (handle as PagemapHandle).scan(s, e, { require: ScanCategory.PFNZERO, report: ScanCategory.PFNZERO });
      for (const reg of r.regions) {
        movePages(
          bands[i],
          Number((reg.start - s) >> 12n),
          Number((reg.end - reg.start) >> 12n),
          PageState.Shared,
          PageState.Zero,
        );
      }
    });
  } catch (err) {
    throw explain(err, pid);
  } finally {
    handle?.close();
  }
  const present = bands.filter(Boolean);
  let rss = 0;
  let vss = 0;
  for (const b of present) {
    vss += b.pages * 4096;
    for (let k = 0; k < b.buckets; k++) rss += (b.counts[k * 5] + b.counts[k * 5 + 1]) * 4096;
  }
  const svg = pictureSvg({
    title: `pid ${pid}: ${command.slice(0, 80)} (VSS ${iec(vss)}, resident ${iec(rss)})`,
    bands: present,
  });
  if (o.output) fs.writeFileSync(o.output, svg);
  else process.stdout.write(svg);
}

// ------------------------------------------------------------------ program

export function buildProgram(): Command {
  const program = new Command('pagewalk');
  program
    .description('Exact Linux memory figures from /proc/PID/pagemap')
    .version(JSON.parse(fs.readFileSync(`${__dirname}/../package.json`, 'utf8')).version)
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({ outputError: (str, write) => write(`pagewalk: ${str.replace(/^error: /, '')}`) });

  program
    .command('smem', { isDefault: true })
    .description("per-process memory report with smem's options (sizes in kB)")
    .option('-c, --columns <cols>', 'columns to show (processes: pid user command name maps swap uss pss rss vss)')
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches')
    .option('-M, --mapfilter <regex>', 'only mappings whose path matches')
    .option('-m, --mappings', 'per-mapping report: mapping paths across processes')
    .option('-u, --users', 'per-user report')
    .option('-w, --system', 'system-wide summary from /proc/meminfo against measured PSS')
    .option('-t, --totals', 'show a totals row')
    .option('-k, --abbreviate', 'human units (1.2M)')
    .option('-p, --percent', 'percentages of RAM (swap: of swap)')
    .option('-s, --sort <field>', 'field to sort on (default pss)')
    .option('-r, --reverse', 'reverse the sort')
    .option('-n, --numeric', 'uid instead of user name')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'JSON, sizes in bytes')
    .option('--csv', 'CSV')
    .option('--bar <field>', 'bar chart labelled by FIELD of the -c size columns')
    .option('--pie <field>', 'pie chart of the sort field labelled by FIELD')
    .option('-o, --output <file>', 'write the chart SVG to FILE (default: stdout; unicode blocks on a terminal)')
    .action(smemCommand);

  program
    .command('show')
    .description("per-mapping figures of one process, like Android's showmap (sizes in kB)")
    .argument('<pid>', 'process id')
    .option('-k, --abbreviate', 'human units')
    .option('-s, --sort <field>', 'sort by vss rss pss uss shared swap (default: address order)')
    .option('-r, --reverse', 'reverse the sort')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'JSON, sizes in bytes')
    .action(showCommand);

  program
    .command('libs')
    .description('memory of each mapped file across processes, like librank (sizes in kB)')
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches')
    .option('-M, --mapfilter <regex>', 'only files whose path matches')
    .option('-a, --all', 'include anonymous and pseudo mappings ([heap], [stack], [anon])')
    .option('-k, --abbreviate', 'human units')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'JSON, sizes in bytes')
    .action(libsCommand);

  program
    .command('pages')
    .description('raw pagemap entries of a process, decoded')
    .argument('<pid>', 'process id')
    .argument('[range]', 'hex address range START-END (default: every mapping)')
    .option('--runs', 'run-length ranges of identical state instead of one line per page')
    .option('--json', 'JSON')
    .action(pagesCommand);

  program
    .command('group')
    .description('memory a set of processes holds together: what stopping them frees (sizes in kB)')
    .requiredOption('-P, --processfilter <regex>', 'the group: processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'and whose user matches')
    .option('-k, --abbreviate', 'human units')
    .option('--json', 'JSON, sizes in bytes')
    .action(groupCommand);

  program
    .command('picture')
    .description('the address space of a process as an SVG picture, pages coloured by state')
    .argument('<pid>', 'process id')
    .option('-o, --output <file>', 'write the SVG to FILE (default: stdout)')
    .action(pictureCommand);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // `pagewalk ... | head` closes the pipe early: not an error.
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version arrive as "errors" once exitOverride is on.
      if (err.exitCode === 0) return 0;
      return EXIT_USAGE;
    }
    const e = explain(err);
    process.stderr.write(`pagewalk: ${e.message}\n`);
    return e.code;
  }
}

// Imported (tests, ESM loaders) it only exports; run as a script it runs.
if (typeof require !== 'undefined' && require.main === module) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

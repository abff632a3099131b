// pagewalk smem: smem's per-process, per-mapping, per-user and system
// reports with kernel-exact figures, as tables, JSON, CSV or charts.
import type { Command } from 'commander';
import { addFigures, emptyFigures, type MemoryFigures } from '../../accounting';
import { GROUP_BY, type GroupBy, KUBERNETES_LABELS } from '../../groups';
import { PAGE } from '../../page';
import { readKernelImage, readSystemRam } from '../../proc/iomem';
import { mappingName } from '../../proc/maps';
import { readMeminfo } from '../../proc/meminfo';
import type { ProcessReport, Snapshot } from '../../snapshot';
import { usage } from '../errors';
import { checkExact, measure, type ObserverOption, observerOption, processFilter } from '../measure';
import { addKubeLogsOption, checkKubeLogs, parseGroupBy, parseRegex } from '../options';
import { checkOutputFile, Output, terminalWidth, writeOutputFile } from '../output';
import {
  barChartSvg,
  type Column,
  formatSize,
  pieChartSvg,
  renderCsv,
  renderTable,
  terminalBars,
  terminalPie,
  type UnitStyle,
} from '../render';
import { GROUP_HEADERS } from '../timeline';

type Value = string | number;
type Row = Record<string, Value>;

interface FieldDef {
  header: string;
  kind: 'size' | 'int' | 'text';
  /** How the totals row combines the column. */
  total: 'sum' | 'count' | 'distinct' | 'none';
  maxWidth?: number;
  /** Clip long values from the start (see Column.keepEnd). */
  keepEnd?: boolean;
  /** Percentages of this column are of swap, not of RAM. */
  ofSwap?: boolean;
}

interface Report {
  name: string;
  /** Where the figures come from and whether pagewalk's own mappings count (snapshot's). */
  source?: Snapshot['source'];
  observer?: Snapshot['observer'];
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

/** The figures every per-process, per-map, per-user and per-cgroup report has, in this order. */
const MEMORY_FIELDS: Record<string, FieldDef> = {
  swap: SIZE('Swap', { ofSwap: true }),
  uss: SIZE('USS'),
  pss: SIZE('PSS'),
  rss: SIZE('RSS'),
  vss: SIZE('VSS'),
};

const PROCESS_FIELDS: Record<string, FieldDef> = {
  pid: { header: 'PID', kind: 'int', total: 'count' },
  user: { header: 'User', kind: 'text', total: 'distinct' },
  // smem's widths: %-27.27s and %-24.24s.
  command: { header: 'Command', kind: 'text', total: 'none', maxWidth: 27 },
  name: { header: 'Name', kind: 'text', total: 'none', maxWidth: 24 },
  maps: { header: 'Maps', kind: 'int', total: 'sum' },
  ...MEMORY_FIELDS,
};

const MAP_FIELDS: Record<string, FieldDef> = {
  map: { header: 'Map', kind: 'text', total: 'count', maxWidth: 40 },
  count: { header: 'Count', kind: 'int', total: 'sum' },
  pids: { header: 'PIDs', kind: 'int', total: 'sum' },
  ...MEMORY_FIELDS,
  avgpss: SIZE('AVGPSS'),
};

const USER_FIELDS: Record<string, FieldDef> = {
  user: { header: 'User', kind: 'text', total: 'count' },
  count: { header: 'Count', kind: 'int', total: 'sum' },
  ...MEMORY_FIELDS,
};

/** The fields of a report by groups (--group-by KEY, --cgroup): the group's name under the key's own name. */
function groupFields(by: GroupBy): Record<string, FieldDef> {
  const kube = KUBERNETES_LABELS[by] ?? [];
  return {
    [by]: { header: GROUP_HEADERS[by], kind: 'text', total: 'count', maxWidth: 48, keepEnd: true },
    // The names a Kubernetes group joins, each a column of its own (empty for a process in no named pod).
    ...Object.fromEntries(
      kube
        .filter((label) => label !== by)
        .map((label): [string, FieldDef] => [
          label,
          { header: GROUP_HEADERS[label as GroupBy], kind: 'text', total: 'distinct', maxWidth: 32 },
        ]),
    ),
    count: { header: 'Count', kind: 'int', total: 'sum' },
    ...MEMORY_FIELDS,
    // Each page once across the group's processes: sums would count pages
    // the processes share with each other more than once.
    unique: SIZE('Unique'),
    distinct: SIZE('Distinct', { total: 'none' }),
  };
}

const SYSTEM_FIELDS: Record<string, FieldDef> = {
  area: { header: 'Area', kind: 'text', total: 'none' },
  used: SIZE('Used'),
  cache: SIZE('Cache'),
  noncache: SIZE('Noncache'),
  measured: SIZE('Measured'),
};

interface SmemOptions extends ObserverOption {
  columns?: string;
  processfilter?: string;
  userfilter?: string;
  mapfilter?: string;
  mappings?: boolean;
  users?: boolean;
  cgroup?: boolean;
  groupBy?: string;
  kubeLogs: string;
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

/** The key of a report by groups: --group-by KEY, or --cgroup (smem's own flag for --group-by cgroup). */
function groupingKey(o: SmemOptions): GroupBy | undefined {
  if (o.cgroup) return 'cgroup';
  return o.groupBy === undefined ? undefined : parseGroupBy(o.groupBy, '--group-by');
}

function figuresRow(f: MemoryFigures): Row {
  return { swap: f.swap, uss: f.uss, pss: f.pss, rss: f.rss, vss: f.vss };
}

/** Sums the mappings whose path matches, keeping PSS in fixed point until the end. */
function mappingSum(p: ProcessReport, re: RegExp): { figures: MemoryFigures; count: number } {
  const figures = emptyFigures();
  let count = 0;
  for (const m of p.mappings ?? []) {
    if (!re.test(mappingName(m.mapping))) continue;
    addFigures(figures, m);
    count++;
  }
  return { figures, count };
}

async function smemReport(o: SmemOptions): Promise<Report> {
  const mapRe = parseRegex(o.mapfilter);
  const filter = processFilter(o);
  if (o.system) {
    const snap = await measure({ filter: (p) => !p.kernelThread }, o);
    checkExact(snap, o);
    const m = readMeminfo();
    const total = m.MemTotal ?? 0;
    const free = m.MemFree ?? 0;
    const user = (m.AnonPages ?? 0) + (m.Mapped ?? 0);
    const kernelCache = (m.Buffers ?? 0) + (m.SReclaimable ?? 0) + Math.max(0, (m.Cached ?? 0) - (m.Mapped ?? 0));
    const pss = snap.processes.reduce((a, p) => a + p.pss, 0);
    // smem shows these two as 0 unless told the RAM size (--realmem) and the
    // kernel file (--kernel); /proc/iomem knows both, to root.
    let image: number | null = null;
    let ram = 0;
    try {
      image = readKernelImage();
      ram = readSystemRam().reduce((a, r) => a + (r.end - r.start) * PAGE, 0);
    } catch {
      // unreadable: left blank
    }
    const known = image !== null && ram > 0;
    const kernelImage = known ? (image as number) : '';
    const firmware = known ? Math.max(0, ram - total - (image as number)) : '';
    const rows: Row[] = [
      { area: 'firmware/hardware', used: firmware, cache: known ? 0 : '', noncache: firmware, measured: '' },
      { area: 'kernel image', used: kernelImage, cache: known ? 0 : '', noncache: kernelImage, measured: '' },
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
      source: snap.source,
      observer: snap.observer,
      name: 'system',
      fields: SYSTEM_FIELDS,
      defaultColumns: 'area used cache noncache measured',
      defaultSort: 'order',
      rows,
    };
  }
  const by = groupingKey(o);
  if (by) {
    checkKubeLogs(by, o.kubeLogs);
    const snap = await measure({ filter, groupBy: by, kubeLogs: o.kubeLogs }, o);
    checkExact(snap, o);
    const kube = KUBERNETES_LABELS[by] ?? [];
    const rows = snap.groups.map((g) => ({
      [by]: g.name,
      ...Object.fromEntries(kube.filter((l) => l !== by).map((l) => [l, g.labels?.[l] ?? ''])),
      count: g.pids.length,
      ...figuresRow(g.totals),
      // Group-unique figures need CAP_SYS_ADMIN: left blank without it.
      ...(g.only !== null && g.distinct !== null ? { unique: g.only, distinct: g.distinct } : {}),
    }));
    return {
      source: snap.source,
      observer: snap.observer,
      name: by === 'cgroup' ? 'cgroups' : 'groups',
      fields: groupFields(by),
      defaultColumns: `${by} count swap uss pss rss unique`,
      defaultSort: 'pss',
      rows,
    };
  }
  const needMappings = Boolean(mapRe || o.mappings);
  // Per-mapping figures cost little; the mapping count needs them, so JSON always has it.
  const wantMaps = Boolean(o.json) || (o.columns ?? '').split(/\s+/).includes('maps');
  const snap = await measure({ filter, mappings: needMappings || wantMaps }, o);
  checkExact(snap, { ...o, perMapping: needMappings });
  if (o.mappings) {
    const byPath = new Map<string, { f: MemoryFigures; count: number; pids: Set<number> }>();
    for (const p of snap.processes) {
      for (const m of p.mappings ?? []) {
        const path = mappingName(m.mapping);
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
      source: snap.source,
      observer: snap.observer,
      name: 'mappings',
      fields: MAP_FIELDS,
      // smem -m's columns; -c "map pids swap uss pss rss vss" gives the rest.
      defaultColumns: 'map pids avgpss pss',
      defaultSort: 'pss',
      rows,
    };
  }
  const rows: Row[] = [];
  const mapsKnown = needMappings || wantMaps;
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
      source: snap.source,
      observer: snap.observer,
      name: 'users',
      fields: USER_FIELDS,
      defaultColumns: 'user count swap uss pss rss',
      defaultSort: 'pss',
      rows: [...byUser.values()],
    };
  }
  return {
    source: snap.source,
    observer: snap.observer,
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

/**
 * The totals as JSON: sums under their own keys; the number of rows under the
 * report's name ("processes": 6) and distinct values under the plural ("users": 1),
 * never under "pid" or "user", where they would look like a process.
 */
function jsonTotals(report: Report, columns: string[], rows: Row[]): Record<string, number> {
  const t = totalsOf(report, columns, rows);
  const out: Record<string, number> = {};
  for (const c of columns) {
    const f = report.fields[c];
    if (f.total === 'sum') out[c] = t[c] as number;
    else if (f.total === 'count') out[report.name] = t[c] as number;
    else if (f.total === 'distinct') out[`${c}s`] = t[c] as number;
  }
  return out;
}

async function smemCommand(o: SmemOptions): Promise<void> {
  if (o.json && o.csv) throw usage('--json and --csv exclude each other');
  if (o.abbreviate && o.percent) throw usage('-k and -p exclude each other');
  if ([o.mappings, o.users, o.cgroup, o.groupBy !== undefined, o.system].filter(Boolean).length > 1)
    throw usage('-m, -u, --cgroup, --group-by and -w exclude each other');
  const by = groupingKey(o);
  if (by && o.mapfilter !== undefined) throw usage(`${o.cgroup ? '--cgroup' : '--group-by'} and -M exclude each other`);
  if (o.bar && o.pie) throw usage('--bar and --pie exclude each other');
  // Check the columns before the (slow) measurement, with the report's field names.
  const fields = o.system
    ? SYSTEM_FIELDS
    : o.mappings
      ? MAP_FIELDS
      : o.users
        ? USER_FIELDS
        : by
          ? groupFields(by)
          : PROCESS_FIELDS;
  const probe: Report = { name: '', fields, defaultColumns: '', defaultSort: '', rows: [] };
  if (o.columns !== undefined) checkColumns(probe, o.columns.split(/\s+/).filter(Boolean));
  for (const f of [o.bar, o.pie, o.sort]) if (f !== undefined) checkColumns(probe, [f]);
  parseRegex(o.processfilter);
  parseRegex(o.userfilter);
  parseRegex(o.mapfilter);
  checkOutputFile(o.output);

  const report = await smemReport(o);
  const columns = (o.columns ?? (o.bar || o.pie ? '' : report.defaultColumns)).split(/\s+/).filter(Boolean);
  const sort = o.sort ?? report.defaultSort;
  const rows = sortRows(report, sort, Boolean(o.reverse));
  const m = readMeminfo();
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
    if (o.totals) body.totals = jsonTotals(report, columns, rows);
    body.source = report.source;
    body.observer = report.observer;
    body.units = 'bytes';
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else if (o.csv) {
    const table = rows.map((r) => columns.map((c) => cell(c, r[c])));
    if (o.totals) {
      // Machine-read: no count where a pid or a user goes; the first such column says "total".
      const t = totalsOf(report, columns, rows);
      const labelAt = columns.findIndex((c) => report.fields[c].total !== 'sum');
      table.push(
        columns.map((c, i) => (i === labelAt ? 'total' : report.fields[c].total === 'sum' ? cell(c, t[c]) : '')),
      );
    }
    await out.write(renderCsv(o.header ? columns.map((c) => report.fields[c].header) : null, table));
  } else {
    const cols: Column[] = columns.map((c) => ({
      header: report.fields[c].header,
      align: report.fields[c].kind === 'text' ? 'left' : 'right',
      maxWidth: report.fields[c].maxWidth,
      keepEnd: report.fields[c].keepEnd,
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
  const label = (r: Row, f: string) => String(r[f]);
  let svg: string;
  let text: string;
  if (o.bar) {
    // One bar per size column: those of -c, or of the report's default columns.
    const series = (columns.length ? columns : report.defaultColumns.split(' ')).filter(
      (c) => report.fields[c].kind === 'size',
    );
    if (series.length === 0) throw usage('--bar needs size columns in -c (swap uss pss rss vss)');
    // Rows with the same label (processes of one name) make one group of bars, as they make one slice of --pie.
    const byLabel = new Map<string, Row>();
    for (const r of sorted) {
      const key = label(r, o.bar);
      const t = byLabel.get(key);
      if (!t) byLabel.set(key, { ...r });
      else
        for (const k of new Set([...series, sort]))
          if (report.fields[k]?.kind === 'size') (t[k] as number) += Number(r[k]);
    }
    let merged = [...byLabel.values()];
    if (report.fields[sort]?.kind === 'size') {
      merged.sort((a, b) => Number(a[sort]) - Number(b[sort]));
      if (o.reverse) merged.reverse();
    }
    const all = merged.length;
    // Charts keep the largest rows by the sort field: dozens of bars are unreadable.
    if (merged.length > CHART_LIMIT) {
      const keep = new Set([...merged].sort((a, b) => Number(b[sort]) - Number(a[sort])).slice(0, CHART_LIMIT));
      merged = merged.filter((r) => keep.has(r));
    }
    const more = all > merged.length ? ` (largest ${merged.length} of ${all})` : '';
    const rows = merged;
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
    for (const r of sorted) byLabel.set(label(r, pie), (byLabel.get(label(r, pie)) ?? 0) + Number(r[sort]));
    const c = {
      title: `${report.fields[sort].header} by ${pie}`,
      labels: [...byLabel.keys()],
      values: [...byLabel.values()],
    };
    svg = pieChartSvg(c);
    text = terminalPie(c, terminalWidth());
  }
  if (o.output) writeOutputFile(o.output, svg);
  else process.stdout.write(process.stdout.isTTY ? text : svg);
}

/** Adds `pagewalk smem` to the program. */
export function registerSmem(program: Command): void {
  const command = program
    .command('smem', { isDefault: true })
    .description("per-process memory report with smem's options (sizes in kB)")
    .option('-c, --columns <cols>', 'columns to show (processes: pid user command name maps swap uss pss rss vss)')
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches')
    .option('-M, --mapfilter <regex>', 'only mappings whose path matches')
    .option('-m, --mappings', 'per-mapping report: mapping paths across processes')
    .option('-u, --users', 'per-user report')
    .option(
      '--cgroup',
      'per-cgroup report: memory cgroups, containers by their 12-digit id (unique: what the cgroup alone holds)',
    )
    .option(
      '--group-by <key>',
      `per-group report, processes grouped by ${GROUP_BY.join(', ')} (unique: what the group alone holds)`,
    )
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
    .option('-o, --output <file>', 'write the chart SVG to FILE (default: stdout; unicode blocks on a terminal)');
  addKubeLogsOption(observerOption(command)).action(smemCommand);
}

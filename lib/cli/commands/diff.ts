// pagewalk diff: what grew and what shrank between two samples of
// `pagewalk record` (the last of two records, or two of one), per process,
// per mapping path and per group, the largest change first; and a chart of
// PSS over time.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import {
  type Change,
  diffGroups,
  diffSamples,
  FIGURE_KEYS,
  type FigureKey,
  parseRecord,
  type Sample,
} from '../../diff';
import type { GroupBy } from '../../groups';
import { CliError, EXIT_RUNTIME, usage } from '../errors';
import { parseCount, parseGroupBy } from '../options';
import { checkOutputFile, Output, warn, writeOutputFile } from '../output';
import { type Column, formatSize, type LineSeries, lineChartSvg, renderTable, type UnitStyle } from '../render';
import { GROUP_HEADERS, groupsOf, signedSize } from '../timeline';

interface DiffOptions {
  from?: string;
  to?: string;
  sort: string;
  all?: boolean;
  limit?: string;
  by?: string;
  abbreviate?: boolean;
  json?: boolean;
  output?: string;
}

function readRecord(file: string): Sample[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT_RUNTIME);
  }
  try {
    const samples = parseRecord(withoutIncompleteTail(text, file), file);
    if (samples.length === 0) throw new CliError(`${file}: no samples`, EXIT_RUNTIME);
    return samples;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message, EXIT_RUNTIME);
  }
}

/**
 * The record without its last line when that line is not a whole sample: a
 * recording cut short by a crash, a full disk or a kill mid-write. The
 * complete samples before it are used, with a warning; a bad line anywhere
 * else is still an error.
 */
function withoutIncompleteTail(text: string, file: string): string {
  const lines = text.split('\n');
  let last = lines.length - 1;
  while (last >= 0 && !lines[last].trim()) last--;
  if (last < 0) return text;
  try {
    // A whole line that is not a sample is an error parseRecord reports; only JSON cut short is dropped.
    JSON.parse(lines[last]);
    return text;
  } catch (err) {
    const complete = lines.slice(0, last).filter((l) => l.trim()).length;
    warn(
      `${file}:${last + 1} is not a whole line of JSON (${(err as Error).message.split('\n')[0]}): a recording cut short? It is left out; the ${complete} complete sample${complete === 1 ? '' : 's'} before it ${complete === 1 ? 'is' : 'are'} used`,
    );
    return lines.slice(0, last).join('\n');
  }
}

/** A sample number: 1 is the first, -1 the last. Returns an index. */
function pick(samples: Sample[], text: string | undefined, fallback: number, option: string, file: string): number {
  const n = text === undefined ? fallback : Number(text);
  if (!Number.isInteger(n) || n === 0)
    throw usage(`${option}: invalid sample number "${text}" (1 is the first, -1 the last)`);
  const index = n > 0 ? n - 1 : samples.length + n;
  if (index < 0 || index >= samples.length)
    throw usage(`${option} ${n}: ${file} has ${samples.length} sample${samples.length === 1 ? '' : 's'}`);
  return index;
}

const moved = (c: Change) => FIGURE_KEYS.some((k) => c.delta[k] !== 0);

function keep<T extends Change>(list: T[], o: DiffOptions, limit?: number): T[] {
  const shown = o.all ? list : list.filter(moved);
  return limit === undefined ? shown : shown.slice(0, limit);
}

/** The entities of the chart: processes (pid and start time) or groups, with their PSS per sample. */
function chartSeries(samples: Sample[], by: GroupBy | undefined, max = 8): LineSeries[] {
  const series = new Map<string, { name: string; values: (number | null)[] }>();
  samples.forEach((s, i) => {
    const entries = by
      ? groupsOf(s, by).map((g) => ({ id: g.key, name: g.key, pss: g.pss }))
      : s.processes.map((p) => ({ id: `${p.pid}:${p.startTime}`, name: `${p.pid} ${p.name}`, pss: p.pss }));
    for (const e of entries) {
      let line = series.get(e.id);
      if (!line) series.set(e.id, (line = { name: e.name, values: new Array(samples.length).fill(null) }));
      line.values[i] = e.pss;
    }
  });
  // The lines that moved most from their first value to their last; then the largest.
  const ends = (v: (number | null)[]) => {
    const known = v.filter((x): x is number => x !== null);
    return { change: Math.abs((known[known.length - 1] ?? 0) - (known[0] ?? 0)), last: known[known.length - 1] ?? 0 };
  };
  return [...series.values()]
    .map((s) => ({ s, ...ends(s.values) }))
    .sort((a, b) => b.change - a.change || b.last - a.last)
    .slice(0, max)
    .map(({ s }) => s);
}

async function diffCommand(fileA: string, fileB: string | undefined, o: DiffOptions): Promise<void> {
  if (!FIGURE_KEYS.includes(o.sort as FigureKey))
    throw usage(`--sort: unknown field "${o.sort}" (known: ${FIGURE_KEYS.join(' ')})`);
  const sort = o.sort as FigureKey;
  const by = o.by === undefined ? undefined : parseGroupBy(o.by, '--by');
  const limit = parseCount(o.limit, '--limit');
  checkOutputFile(o.output);
  const a = readRecord(fileA);
  const b = fileB === undefined ? a : readRecord(fileB);
  // One record: its first sample against its last. Two: the last of each.
  if (fileB === undefined && a.length === 1 && o.from === undefined && o.to === undefined)
    throw new CliError(
      `${fileA} has one sample: diff compares two (record -n 2 or more, or give a second record)`,
      EXIT_RUNTIME,
    );
  const from = pick(a, o.from, fileB === undefined ? 1 : -1, '--from', fileA);
  const to = pick(b, o.to, -1, '--to', fileB ?? fileA);
  if (fileB === undefined && from === to) throw usage(`${fileA}: --from and --to pick the same sample`);
  const before = a[from];
  const after = b[to];
  const diff = diffSamples(before, after, { sort });
  const groups = by ? diffGroups(groupsOf(before, by), groupsOf(after, by), { sort }) : undefined;

  if (o.output !== undefined) {
    const samples = (fileB === undefined ? a.slice(from, to + 1) : [...a.slice(from), ...b.slice(0, to + 1)]).sort(
      (x, y) => Date.parse(x.time) - Date.parse(y.time),
    );
    const what = by ? `${by}s` : 'processes';
    const svg = lineChartSvg({
      title: `PSS over time: the ${what} that changed most`,
      times: samples.map((s) => Date.parse(s.time)),
      series: chartSeries(samples, by),
    });
    writeOutputFile(o.output, svg);
  }

  const out = new Output();
  if (o.json) {
    const body = {
      from: diff.from,
      to: diff.to,
      seconds: diff.seconds,
      sort: diff.sort,
      totals: diff.totals,
      started: diff.started,
      exited: diff.exited,
      ...(groups ? { by, groups: keep(groups, o, limit) } : { processes: keep(diff.processes, o, limit) }),
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
    await out.flush();
    return;
  }
  const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
  const size = (v: number) => formatSize(v, style);
  const title = sort === 'swap' ? 'Swap' : sort.toUpperCase();
  const t = diff.totals;
  await out.write(
    `${diff.from} -> ${diff.to} (${diff.seconds.toFixed(1)} s); sorted by ${title} change, sizes in ${style === 'kb' ? 'kB' : 'human units'}\n` +
      `Total ${title}: ${size(t.before[sort])} -> ${size(t.after[sort])} (${signedSize(t.delta[sort], style)}); ` +
      `${diff.started} started, ${diff.exited} exited\n\n`,
  );
  const columns: Column[] = [
    { header: by ? 'Count' : 'PID', align: 'right' },
    { header: 'Status', align: 'left' },
    { header: `${title}-before`, align: 'right' },
    { header: `${title}-after`, align: 'right' },
    { header: 'Change', align: 'right' },
    ...FIGURE_KEYS.filter((k) => k !== sort && k !== 'vss').map((k) => ({
      header: `d${k === 'swap' ? 'Swap' : k.toUpperCase()}`,
      align: 'right' as const,
    })),
    { header: by ? GROUP_HEADERS[by] : 'Command', align: 'left' },
  ];
  const cells = (c: Change) => [
    c.status,
    size(c.before[sort]),
    size(c.after[sort]),
    signedSize(c.delta[sort], style),
    ...FIGURE_KEYS.filter((k) => k !== sort && k !== 'vss').map((k) => signedSize(c.delta[k], style)),
  ];
  // PSS moves by fractions of a kB whenever another process maps or unmaps a
  // shared library: rows whose changes all print as 0 are left out too.
  const visible = (c: Change) =>
    o.all ||
    cells(c)
      .slice(3)
      .some((cell) => cell !== '0');
  const rows: string[][] = [];
  // What stopping the group would free, and its change: when recorded with CAP_SYS_ADMIN.
  const withOnly = groups?.some((g) => g.only !== undefined) ?? false;
  if (withOnly) columns.splice(columns.length - 1, 0, { header: 'dOnly', align: 'right' });
  if (groups) {
    for (const g of keep(groups, o).filter(visible).slice(0, limit)) {
      const only = withOnly ? [g.only ? signedSize(g.only.delta, style) : '-'] : [];
      rows.push([String(g.pidsAfter.length || g.pidsBefore.length), ...cells(g), ...only, g.key]);
    }
  } else {
    for (const p of keep(diff.processes, o).filter(visible).slice(0, limit)) {
      rows.push([String(p.pid), ...cells(p), p.command]);
      // The mapping paths of a process that is in both samples, indented under it.
      if (p.status === 'started' || p.status === 'exited') continue;
      for (const m of keep(p.mappings ?? [], o).filter(visible)) rows.push(['', ...cells(m), `  ${m.path}`]);
    }
  }
  if (rows.length === 0) await out.write(o.all ? 'no processes\n' : 'nothing changed\n');
  else await out.write(renderTable(columns, rows));
  await out.flush();
}

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('what grew and shrank between two samples of `pagewalk record`, largest change first (sizes in kB)')
    .argument('<a>', 'a record (JSON Lines from pagewalk record)')
    .argument('[b]', 'a second record: compares the last sample of each (default: first and last sample of A)')
    .option('--from <n>', 'the sample of A to start from: 1 the first, -1 the last')
    .option('--to <n>', 'the sample (of B, or of A) to compare with: 1 the first, -1 the last')
    .option('-s, --sort <field>', 'the figure to compare and sort by: pss uss rss swap vss', 'pss')
    .option('--by <key>', 'groups instead of processes: name or user, or as recorded with record --by')
    .option('-a, --all', 'list what did not change too')
    .option('-l, --limit <n>', 'the N largest changes only')
    .option('-k, --abbreviate', 'human units (1.2M) instead of kB')
    .option('--json', 'JSON, sizes in bytes')
    .option('-o, --output <file>', 'also write an SVG chart of PSS over time (the samples from --from to --to) to FILE')
    .action(diffCommand);
}

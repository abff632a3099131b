// pagewalk top: a live view of memory, refreshed every -d seconds: processes
// (or groups) sorted by PSS with their change since the previous refresh
// and since the start, and the machine's totals from /proc/meminfo. On a
// terminal it takes the screen and keys; with -b (or when stdout is not a
// terminal) it prints plain frames one after the other, as top(1) does.
import type { Command } from 'commander';
import { diffGroups, type Figures, type Sample, type SampleDiff } from '../../diff';
import { GROUP_BY, type GroupBy } from '../../groups';
import type { Snapshot } from '../../snapshot';
import { type WatchStep, watch } from '../../watch';
import { explain, usage } from '../errors';
import { checkExact, type ObserverOption, observerOption, observerSettings, processFilter } from '../measure';
import { addKubeLogsOption, checkKubeLogs, parseCount, parseGroupBy, parseSeconds } from '../options';
import { Output, terminalWidth } from '../output';
import { type Column, formatSize, human, renderTable, type UnitStyle } from '../render';
import { GROUP_HEADERS, groupsOf, signedSize } from '../timeline';

interface TopOptions extends ObserverOption {
  delay: string;
  iterations?: string;
  batch?: boolean;
  by?: string;
  kubeLogs: string;
  sort: string;
  processfilter?: string;
  userfilter?: string;
  abbreviate?: boolean;
}

/** The sort columns and the keys that pick them on a terminal. */
const SORTS = {
  pss: { key: 'p', title: 'PSS' },
  uss: { key: 'u', title: 'USS' },
  rss: { key: 'r', title: 'RSS' },
  swap: { key: 's', title: 'Swap' },
  change: { key: 'c', title: 'change since the last refresh' },
  start: { key: 'g', title: 'change since the start' },
} as const;
type SortKey = keyof typeof SORTS;

interface TopRow {
  /** A pid, or the group's name. */
  id: string;
  pid?: number;
  user: string;
  label: string;
  count: number;
  /** What only the group's processes map: what stopping them frees (needs root). */
  only?: number;
  figures: Figures;
  /** Changes since the previous frame and since the first. */
  change: Figures;
  start: Figures;
}

interface Frame {
  step: WatchStep;
  rows: TopRow[];
  previousPss: number;
  firstPss: number;
}

const changeKey = (pid: number, startTime: number) => `${pid}:${startTime}`;

const NONE: Figures = { pss: 0, uss: 0, rss: 0, swap: 0, vss: 0 };

function changes(diff: SampleDiff | null): Map<string, Figures> {
  return new Map((diff?.processes ?? []).map((p) => [changeKey(p.pid, p.startTime), p.delta]));
}

function processRows(step: WatchStep): TopRow[] {
  const last = changes(step.sincePrevious);
  const first = changes(step.sinceStart);
  return step.sample.processes.map((p) => ({
    id: String(p.pid),
    pid: p.pid,
    user: p.user,
    label: p.command,
    count: 1,
    figures: p,
    change: last.get(changeKey(p.pid, p.startTime)) ?? NONE,
    start: first.get(changeKey(p.pid, p.startTime)) ?? NONE,
  }));
}

function groupRows(sample: Sample, previous: Sample, first: Sample, by: GroupBy): TopRow[] {
  const now = groupsOf(sample, by);
  const last = new Map(diffGroups(groupsOf(previous, by), now).map((g) => [g.key, g.delta]));
  const start = new Map(diffGroups(groupsOf(first, by), now).map((g) => [g.key, g.delta]));
  return now.map((g) => ({
    id: g.key,
    user: '',
    label: g.key,
    count: g.pids.length,
    ...(sample.source === 'pagemap' && g.only !== undefined ? { only: g.only } : {}),
    figures: g,
    change: last.get(g.key) ?? NONE,
    start: start.get(g.key) ?? NONE,
  }));
}

/** The figure the change columns show: the one sorted by, PSS when sorting by a change. */
function changeFigure(sort: SortKey): 'pss' | 'uss' | 'rss' | 'swap' {
  return sort === 'change' || sort === 'start' ? 'pss' : sort;
}

function sortRows(rows: TopRow[], sort: SortKey): TopRow[] {
  const value = (r: TopRow) => (sort === 'change' ? r.change.pss : sort === 'start' ? r.start.pss : r.figures[sort]);
  return [...rows].sort((a, b) => value(b) - value(a) || b.figures.pss - a.figures.pss || a.id.localeCompare(b.id));
}

function clock(iso: string): string {
  return new Date(iso).toTimeString().slice(0, 8);
}

/** The rows a screen shows: `rows` of them from `offset` (the scroll position). */
interface View {
  offset: number;
  rows: number;
}

/** The scroll keys: arrows, j/k, Page Up/Down, space and b, Home/End. */
const SCROLL: [string, (view: View) => number][] = [
  ['\x1b[A', (v) => v.offset - 1],
  ['\x1b[B', (v) => v.offset + 1],
  ['\x1b[5~', (v) => v.offset - v.rows],
  ['\x1b[6~', (v) => v.offset + v.rows],
  ['\x1b[H', () => 0],
  ['\x1bOH', () => 0],
  ['\x1b[1~', () => 0],
  ['\x1b[F', () => Number.MAX_SAFE_INTEGER],
  ['\x1bOF', () => Number.MAX_SAFE_INTEGER],
  ['\x1b[4~', () => Number.MAX_SAFE_INTEGER],
  ['k', (v) => v.offset - 1],
  ['j', (v) => v.offset + 1],
  ['b', (v) => v.offset - v.rows],
  [' ', (v) => v.offset + v.rows],
];

/** The lines of one frame; `view` cuts the table to fit a screen, scrolled. */
function frameLines(frame: Frame, o: TopOptions, sort: SortKey, interactive: boolean, view?: View): string[] {
  const { step } = frame;
  const { sample } = step;
  const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
  const m = sample.meminfo ?? {};
  const count = o.iterations ? `/${o.iterations}` : '';
  const lines = [
    `pagewalk top - ${clock(sample.time)}  every ${Number(o.delay)}s  frame ${step.index + 1}${count}  sorted by ${SORTS[sort].title}, changes of ${SORTS[changeFigure(sort)].title}  observer ${sample.observer}`,
    `Mem: ${human(m.MemTotal ?? 0)} total, ${human(m.MemFree ?? 0)} free, ${human(m.MemAvailable ?? 0)} available, ` +
      `${human((m.Buffers ?? 0) + (m.Cached ?? 0) + (m.SReclaimable ?? 0))} buff/cache, ${human(m.Shmem ?? 0)} shmem; ` +
      `Swap: ${human(m.SwapTotal ?? 0)} total, ${human((m.SwapTotal ?? 0) - (m.SwapFree ?? 0))} used`,
  ];
  const totalPss = sample.processes.reduce((t, p) => t + p.pss, 0);
  const last = step.sincePrevious;
  const moved = last ? `, ${last.started} started, ${last.exited} exited` : '';
  const gone = sample.gone ? `, ${sample.gone} unreadable or gone` : '';
  lines.push(
    `Processes: ${sample.processes.length} measured${moved}${gone}; PSS ${human(totalPss)}, ` +
      `change ${signedSize(totalPss - frame.previousPss, 'human')}, since start ${signedSize(totalPss - frame.firstPss, 'human')}`,
  );
  const sorted = sortRows(frame.rows, sort);
  const offset = view ? Math.max(0, Math.min(view.offset, sorted.length - view.rows)) : 0;
  const shownRows = view ? sorted.slice(offset, offset + view.rows) : sorted;
  if (interactive) {
    // The rows shown come first: a narrow screen cuts the line's end.
    const range = `Rows ${Math.min(offset + 1, sorted.length)}-${offset + shownRows.length} of ${sorted.length}`;
    lines.push(
      `${range}; Keys: p u r s sort by PSS USS RSS Swap, c by change, g by change since start; arrows j k PgUp PgDn scroll; q quit`,
    );
  }
  lines.push('');
  const grouped = o.by !== undefined;
  const shown = changeFigure(sort);
  const withOnly = grouped && frame.rows.some((r) => r.only !== undefined);
  const columns: Column[] = [
    ...(grouped
      ? [
          { header: GROUP_HEADERS[o.by as GroupBy], align: 'left' as const },
          { header: 'Count', align: 'right' as const },
          ...(withOnly ? [{ header: 'Only', align: 'right' as const }] : []),
        ]
      : [
          { header: 'PID', align: 'right' as const },
          { header: 'User', align: 'left' as const, maxWidth: 12 },
        ]),
    { header: 'Swap', align: 'right' },
    { header: 'USS', align: 'right' },
    { header: 'PSS', align: 'right' },
    { header: 'RSS', align: 'right' },
    { header: 'Change', align: 'right' },
    { header: 'SinceStart', align: 'right' },
  ];
  // The command goes last, cut to what the screen leaves.
  if (!grouped) columns.push({ header: 'Command', align: 'left', maxWidth: 60 });
  const rows = shownRows.map((r) => [
    ...(grouped ? [r.label, String(r.count)] : [String(r.pid), r.user]),
    ...(withOnly ? [formatSize(r.only ?? 0, style)] : []),
    formatSize(r.figures.swap, style),
    formatSize(r.figures.uss, style),
    formatSize(r.figures.pss, style),
    formatSize(r.figures.rss, style),
    signedSize(r.change[shown], style),
    signedSize(r.start[shown], style),
    ...(grouped ? [] : [r.label]),
  ]);
  lines.push(...renderTable(columns, rows).trimEnd().split('\n'));
  return lines;
}

/** Puts the terminal back as it was: cursor, main screen, cooked input. */
const SCREEN_ENTER = '\x1b[?1049h\x1b[?25l';
const SCREEN_LEAVE = '\x1b[?25h\x1b[?1049l';

async function topCommand(o: TopOptions): Promise<void> {
  const interval = parseSeconds(o.delay, '-d');
  const count = parseCount(o.iterations);
  const by = o.by === undefined ? undefined : parseGroupBy(o.by, '--by');
  checkKubeLogs(by, o.kubeLogs);
  if (!(o.sort in SORTS)) throw usage(`--sort: unknown field "${o.sort}" (known: ${Object.keys(SORTS).join(' ')})`);
  let sort = o.sort as SortKey;
  const filter = processFilter(o);
  const interactive = !o.batch && process.stdout.isTTY === true;
  const out = new Output();
  const ac = new AbortController();
  let frame: Frame | undefined;
  let firstSnapshot: Snapshot | undefined;
  let first: Sample | undefined;
  let previous: Sample | undefined;
  let restored = !interactive;
  const stdin = process.stdin;
  const keys = interactive && stdin.isTTY === true;
  // The first row on screen; kept within the table when it is drawn.
  const view: View = { offset: 0, rows: 1 };

  const draw = () => {
    if (!frame || restored) return;
    const width = terminalWidth();
    const height = process.stdout.rows || 24;
    const header = keys ? 6 : 5;
    view.rows = Math.max(1, height - header - 1);
    view.offset = Math.max(0, Math.min(view.offset, frame.rows.length - view.rows));
    const lines = frameLines(frame, o, sort, keys, view);
    // Home, each line cleared to its end, then the rest of the screen cleared: no flicker.
    const text = lines.map((l) => `${l.slice(0, width)}\x1b[K`).join('\r\n');
    process.stdout.write(`\x1b[H${text}\x1b[J`);
  };
  const restore = () => {
    if (restored) return;
    restored = true;
    if (keys) {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onKey);
    }
    process.stdout.off('resize', draw);
    process.stdout.write(SCREEN_LEAVE);
  };
  const quit = () => {
    // The screen goes back at once; a snapshot under way finishes unseen.
    restore();
    ac.abort();
  };
  const onKey = (data: Buffer) => {
    const text = data.toString('latin1');
    for (let i = 0; i < text.length; ) {
      const scroll = SCROLL.find(([seq]) => text.startsWith(seq, i));
      if (scroll) {
        view.offset = scroll[1](view);
        i += scroll[0].length;
        draw();
        continue;
      }
      const ch = text[i++];
      // q, Ctrl-C (raw mode turns it into a byte) and Ctrl-D quit.
      if (ch === 'q' || ch === '\x03' || ch === '\x04') {
        quit();
        return;
      }
      const picked = (Object.keys(SORTS) as SortKey[]).find((k) => SORTS[k].key === ch);
      if (picked) {
        sort = picked;
        view.offset = 0;
        draw();
      }
    }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, quit);
  if (interactive) {
    process.stdout.write(SCREEN_ENTER);
    process.stdout.on('resize', draw);
    if (keys) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onKey);
    }
  }
  try {
    for await (const step of watch({
      interval,
      count,
      signal: ac.signal,
      filter,
      groupBy: by,
      kubeLogs: o.kubeLogs,
      ...observerSettings(o),
    })) {
      // On a terminal the screen would hide a warning: it is given once the screen is back.
      if (step.index === 0) {
        if (interactive) firstSnapshot = step.snapshot;
        else checkExact(step.snapshot, o);
      }
      first ??= step.sample;
      const rows = by ? groupRows(step.sample, previous ?? step.sample, first, by) : processRows(step);
      const sum = (s: Sample | undefined) => (s ?? step.sample).processes.reduce((t, p) => t + p.pss, 0);
      frame = { step, rows, previousPss: sum(previous), firstPss: sum(first) };
      previous = step.sample;
      if (interactive) draw();
      else {
        await out.write(`${frameLines(frame, o, sort, false).join('\n')}\n\n`);
        await out.flush();
      }
    }
  } catch (err) {
    throw explain(err);
  } finally {
    restore();
    for (const s of signals) process.off(s, quit);
  }
  if (firstSnapshot) checkExact(firstSnapshot, o);
}

export function registerTop(program: Command): void {
  const command = program
    .command('top')
    .description('live view: processes sorted by PSS with their change since the last refresh and the start')
    .option('-d, --delay <seconds>', 'seconds between refreshes', '2')
    .option('-n, --iterations <n>', 'stop after N frames')
    .option(
      '-b, --batch',
      'plain frames one after another, no screen control (the default when stdout is not a terminal)',
    )
    .option('--by <key>', `groups instead of processes: ${GROUP_BY.join(', ')}`)
    .option('-s, --sort <field>', 'pss uss rss swap change start (keys p u r s c g on a terminal)', 'pss')
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches')
    .option('-k, --abbreviate', 'human units (1.2M) instead of kB');
  addKubeLogsOption(observerOption(command)).action(topCommand);
}

// pagewalk group -P REGEX: what a set of processes holds together, and what
// stopping them frees; pagewalk group --by FACT (or --config FILE): the same
// for every group of processes at once.
import type { Command } from 'commander';
import { GROUP_BY, type Grouping } from '../../groups';
import {
  type GoneProcess,
  type GroupReport,
  type ProcessInfo,
  type ProcessReport,
  processInfo,
  type Snapshot,
  type SnapshotOptions,
} from '../../snapshot';
import { CliError, EXIT_NOT_FOUND, EXIT_RUNTIME, explain, PRIVILEGE, usage } from '../errors';
import { loadGrouping } from '../grouping';
import { checkExact, deniedLine, deniedProcesses, measure, type ObserverOption, observerOption } from '../measure';
import { addKubeLogsOption, checkKubeLogs, parseGroupBy, parseRegex } from '../options';
import { Output, terminalWidth } from '../output';
import { formatSize, renderTable, type UnitStyle } from '../render';

interface GroupOptions extends ObserverOption {
  processfilter?: string;
  by?: string;
  config?: string;
  kubeLogs: string;
  userfilter?: string;
  abbreviate?: boolean;
  json?: boolean;
}

async function measureGroups(options: SnapshotOptions, o: GroupOptions): Promise<Snapshot> {
  try {
    // Every process is measured: "shared with outside" needs the outside.
    return await measure({ filter: (p) => !p.kernelThread, ...options }, o);
  } catch (err) {
    throw explain(err);
  }
}

async function groupCommand(o: GroupOptions): Promise<void> {
  if ([o.processfilter, o.by, o.config].filter((v) => v !== undefined).length !== 1)
    throw usage('give one of -P REGEX, --by FACT or --config FILE');
  if (o.processfilter === undefined) {
    if (o.userfilter !== undefined) throw usage('-U goes with -P');
    const grouping: Grouping = o.config !== undefined ? loadGrouping(o.config) : parseGroupBy(o.by as string, '--by');
    checkKubeLogs(grouping, o.kubeLogs);
    return groupsReport(await measureGroups({ groupBy: grouping, kubeLogs: o.kubeLogs }, o), o);
  }
  const processfilter = o.processfilter;
  const pre = parseRegex(processfilter) as RegExp;
  const ure = parseRegex(o.userfilter);
  const member = (p: ProcessInfo) => (pre.test(p.name) || pre.test(p.command)) && (!ure || ure.test(p.user));
  const snap = await measureGroups({ groups: [{ name: processfilter, match: member }] }, o);
  const g = snap.groups[0];
  // Every process is measured, but only the unreadable ones the pattern matches concern the user.
  const asked = (d: GoneProcess) => {
    try {
      return member(processInfo(d.pid));
    } catch {
      return false; // exited meanwhile
    }
  };
  if (g.pids.length === 0) {
    // Unreadable processes may be the ones asked for: say what is missing rather than "no match".
    const denied = deniedProcesses(snap).filter(asked);
    if (denied.length)
      throw new CliError(`no readable process matches /${processfilter}/; ${deniedLine(denied)}`, EXIT_RUNTIME);
    throw new CliError(`no process matches /${processfilter}/`, EXIT_NOT_FOUND);
  }
  checkExact(snap, { ...o, relevant: asked });
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
      ...groupFigures(g),
      source: snap.source,
      observer: snap.observer,
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const unit = style === 'kb' ? ' kB' : '';
    const sz = (v: number) => `${formatSize(v, style)}${unit}`;
    // Group-unique figures need every page's mapcount: without privilege only the sums are known.
    const exact = (v: number | null) => (v === null ? PRIVILEGE : sz(v));
    const figures = [
      ['Group USS', exact(g.only), 'held by these processes alone: what stopping them all frees'],
      ['Shared outside', exact(g.sharedOutside), 'resident memory they share with other processes'],
      ['Distinct RSS', exact(g.distinct), 'resident memory they map, each page once'],
      ['Sum of PSS', sz(g.totals.pss), 'their proportional share'],
      ['Sum of USS', sz(g.totals.uss), 'what each alone holds, summed (misses pages shared within the group)'],
      ['Sum of RSS', sz(g.totals.rss), 'counts shared pages once per process'],
    ];
    const head = [['Group', `/${g.name}/`, '']];
    // The third column starts after the widest label and the widest value, one space after each.
    const widest = (i: number) => Math.max(...[...head, ...figures].map((r) => r[i].length), 'Processes'.length);
    const rows = [...head, ...memberRows(members, terminalWidth() - widest(0) - widest(1) - 2), ...figures];
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

/** Members listed one by one up to this many; beyond, counted by name and their pids wrapped. */
const LISTED_MEMBERS = 8;

/**
 * The "Processes" row, and for a large group "Pids" rows wrapped to the
 * terminal: 64 postgres backends on one line would run to 700 characters.
 */
function memberRows(members: ProcessReport[], columns: number): string[][] {
  const count = String(members.length);
  if (members.length <= LISTED_MEMBERS)
    return [['Processes', count, members.map((p) => `${p.pid} ${p.info.name}`).join(', ')]];
  const byName = new Map<string, number>();
  for (const p of members) byName.set(p.info.name, (byName.get(p.info.name) ?? 0) + 1);
  const names = [...byName]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([name, n]) => `${name} x${n}`)
    .join(', ');
  const width = Math.max(20, columns);
  const lines: string[] = [];
  let line = '';
  for (const p of [...members].sort((a, b) => a.pid - b.pid)) {
    const pid = String(p.pid);
    if (line && line.length + 1 + pid.length > width) {
      lines.push(line);
      line = pid;
    } else line = line ? `${line} ${pid}` : pid;
  }
  lines.push(line);
  return [['Processes', count, names], ...lines.map((l, i) => [i === 0 ? 'Pids' : '', '', l])];
}

/** A group's figures as `--json` gives them, for -P and --by alike (bytes). */
function groupFigures(g: GroupReport) {
  return {
    // Null without CAP_SYS_ADMIN: what the group alone holds needs every page's mapcount.
    only: g.only,
    sharedOutside: g.sharedOutside,
    distinct: g.distinct,
    pss: g.totals.pss,
    uss: g.totals.uss,
    rss: g.totals.rss,
    swap: g.totals.swap,
  };
}

/** One row per group, the largest PSS last (as smem sorts). */
async function groupsReport(snap: Snapshot, o: GroupOptions): Promise<void> {
  checkExact(snap, o);
  const groups = snap.groups.filter((g) => g.pids.length > 0).sort((a, b) => a.totals.pss - b.totals.pss);
  const out = new Output();
  if (o.json) {
    const body = {
      groups: groups.map((g) => ({
        group: g.name,
        ...(g.labels ? { labels: g.labels } : {}),
        pids: g.pids,
        ...groupFigures(g),
      })),
      source: snap.source,
      observer: snap.observer,
      units: 'bytes',
    };
    await out.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const sz = (v: number | null) => (v === null ? '-' : formatSize(v, style));
    const headers = ['Group', 'Procs', 'Unique', 'Outside', 'Distinct', 'PSS', 'USS', 'RSS', 'Swap'];
    await out.write(
      renderTable(
        headers.map((header, i) => ({
          header,
          align: i === 0 ? 'left' : 'right',
          // Group names can be long cgroup paths, told apart by their end.
          ...(i === 0 ? { maxWidth: 48, keepEnd: true } : {}),
        })),
        groups.map((g) => [
          g.name,
          String(g.pids.length),
          sz(g.only),
          sz(g.sharedOutside),
          sz(g.distinct),
          sz(g.totals.pss),
          sz(g.totals.uss),
          sz(g.totals.rss),
          sz(g.totals.swap),
        ]),
        {},
      ),
    );
  }
  await out.flush();
}

/** Adds `pagewalk group` to the program. */
export function registerGroup(program: Command): void {
  const command = program
    .command('group')
    .description('memory a set of processes holds together: what stopping them frees (sizes in kB)')
    .option('-P, --processfilter <regex>', 'the group: processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'and whose user matches')
    .option('--by <fact>', `every group at once, processes grouped by ${GROUP_BY.join(', ')}`)
    .option('--config <file>', 'every group at once, by YAML rules (see docs/exporter.md)')
    .option('-k, --abbreviate', 'human units')
    .option('--json', 'JSON, sizes in bytes');
  addKubeLogsOption(observerOption(command)).action(groupCommand);
}

// pagewalk ram: where the machine's memory is, every page frame counted
// once (ramCensus()), as a tree table, JSON or a sunburst SVG.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import type { Grouping } from '../../groups';
import { type RamCensus, type RamNode, ramCensus } from '../../ram';
import { CliError, EXIT_RUNTIME, PRIVILEGE, usage } from '../errors';
import { loadGrouping } from '../grouping';
import { parseCount, parseGroupBy } from '../options';
import { Output } from '../output';
import { progress } from '../progress';
import { type Column, formatSize, iec, percent, renderTable, type UnitStyle } from '../render';
import { sunburstSvg } from '../sunburst';

interface RamOptions {
  groupBy: string;
  config?: string;
  depth: string;
  abbreviate?: boolean;
  json?: boolean;
  output?: string;
  cgroups?: boolean;
  processes: boolean;
  header: boolean;
}

/** Rows shown under one node of the table (the JSON has them all). */
const MAX_ROWS = 12;

/** The tree as rows, largest first, down to `depth` levels below the categories. */
function treeRows(root: RamNode, depth: number, style: UnitStyle, total: number): string[][] {
  const rows: string[][] = [];
  const visit = (n: RamNode, level: number) => {
    const note = level === 1 && n.name === 'unexplained' && n.bytes > 0 ? `  (${n.note})` : '';
    rows.push([formatSize(n.bytes, style), percent(n.bytes, total), `${'  '.repeat(level - 1)}${n.name}${note}`]);
    if (level >= depth) return;
    const children = (n.children ?? []).filter((c) => c.bytes > 0);
    // A cgroup can hold thousands of files: the largest, one line for the
    // others, then the remainders (named in parentheses) as they are.
    const named = children.filter((c) => !c.name.startsWith('('));
    const rest = named.length > MAX_ROWS + 1 ? named.splice(MAX_ROWS) : [];
    for (const c of named) visit(c, level + 1);
    if (rest.length > 0) {
      const bytes = rest.reduce((s, c) => s + c.bytes, 0);
      rows.push([formatSize(bytes, style), percent(bytes, total), `${'  '.repeat(level)}… ${rest.length} more`]);
    }
    for (const c of children) if (c.name.startsWith('(')) visit(c, level + 1);
  };
  for (const c of root.children ?? []) visit(c, 1);
  return rows;
}

function summary(c: RamCensus): string {
  const r = c.reconciliation;
  return [
    `total ${iec(c.total)} = MemTotal ${iec(r.memTotal)} + reserved at boot ${iec(r.reservedAtBoot)} + holes ${iec(r.holes)}`,
    `unexplained ${iec(c.unexplained.bytes)} (${percent(c.unexplained.bytes, r.memTotal)} of MemTotal)`,
    `census in ${Math.round(c.elapsedMs)} ms on ${c.kernel}`,
  ].join('\n');
}

function cgroupTable(c: RamCensus, style: UnitStyle, header: boolean): string {
  const cols: Column[] = [
    ...['Anon', 'File', 'Shmem', 'Kernel', 'Total'].map((h): Column => ({ header: h, align: 'right' })),
    { header: 'Cgroup (memory.stat difference)', align: 'left' },
  ];
  const rows = c.cgroups.map((g) => [
    ...[g.anon, g.file, g.shmem, g.kernel, g.total].map((v) => formatSize(v, style)),
    `${g.path ?? `(removed, inode ${g.inode})`}${g.checks.length ? `  ${g.checks.map((k) => `${k.name.split(' =')[0]} ${k.difference >= 0 ? '+' : '-'}${formatSize(Math.abs(k.difference), style)}`).join(', ')}` : ''}`,
  ]);
  return renderTable(cols, rows, { header });
}

async function ramCommand(o: RamOptions, cmd: Command): Promise<void> {
  if (o.config !== undefined && cmd.getOptionValueSource('groupBy') === 'cli')
    throw usage('--config and --group-by exclude each other');
  const grouping: Grouping = o.config !== undefined ? loadGrouping(o.config) : parseGroupBy(o.groupBy, '--group-by');
  const depth = parseCount(o.depth, '--depth') as number;
  const bar = progress();
  let census: RamCensus;
  try {
    census = await ramCensus({
      groupBy: grouping,
      processes: o.processes,
      onProgress: (phase, done, total) => bar.onProgress(done, total, phase),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // The frame files are root's alone: say so, not just EACCES.
    if ((e.code === 'EACCES' || e.code === 'EPERM') && /\/kpage(flags|count|cgroup)$/.test(e.path ?? ''))
      throw new CliError(
        `permission denied reading ${e.path}: the census of every page frame ${PRIVILEGE}`,
        EXIT_RUNTIME,
      );
    throw err;
  } finally {
    bar.end();
  }
  const out = new Output();
  if (o.output) {
    fs.writeFileSync(
      o.output,
      sunburstSvg(`Memory of this machine: ${iec(census.total)} of page frames`, census.tree, Math.min(depth + 1, 3)),
    );
  }
  if (o.json) {
    await out.write(`${JSON.stringify({ ...census, units: 'bytes' }, null, 2)}\n`);
  } else if (!o.output) {
    const style: UnitStyle = o.abbreviate ? 'human' : 'kb';
    const cols: Column[] = [
      { header: style === 'kb' ? 'Size(kB)' : 'Size', align: 'right' },
      { header: '%', align: 'right' },
      { header: 'Where', align: 'left' },
    ];
    await out.write(renderTable(cols, treeRows(census.tree, depth, style, census.total), { header: o.header }));
    if (o.cgroups) await out.write(`\n${cgroupTable(census, style, o.header)}`);
    await out.write(`\n${summary(census)}\n`);
  }
  await out.flush();
}

/** Adds `pagewalk ram` to the program. */
export function registerRam(program: Command): void {
  program
    .command('ram')
    .description('where the memory is: every page frame of the machine in one category, named (sizes in kB)')
    .option('-g, --group-by <key>', 'group processes by name, exe, user or cgroup', 'name')
    .option('--config <file>', 'group processes by the rules of a YAML file')
    .option('-d, --depth <n>', 'levels of the tree to show', '2')
    .option('-k, --abbreviate', 'human units')
    .option('--cgroups', 'also what each memory cgroup is charged for, against its memory.stat')
    .option('--no-processes', 'do not split processes by group (no snapshot)')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'the whole census as JSON, sizes in bytes')
    .option('-o, --output <file>', 'write a sunburst SVG of the tree to FILE')
    .action(ramCommand);
}

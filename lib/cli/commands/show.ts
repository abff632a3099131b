// pagewalk show PID: per-mapping figures of one process, like Android's showmap.
import type { Command } from 'commander';
import type { MemoryFigures } from '../../accounting';
import { processMemory } from '../../pipeline';
import { mappingName } from '../../proc/maps';
import { CliError, EXIT_RUNTIME, explain, PRIVILEGE, usage } from '../errors';
import { checkExactProcess, type ObserverOption, observerOption, observerSettings } from '../measure';
import { parseUserPid } from '../options';
import { Output } from '../output';
import { type Column, formatSize, hex, renderTable, type UnitStyle } from '../render';

interface ShowOptions extends ObserverOption {
  abbreviate?: boolean;
  json?: boolean;
  sort?: string;
  reverse?: boolean;
  header: boolean;
}

const SHOW_SIZES = ['vss', 'rss', 'pss', 'uss', 'shared', 'swap'] as const;

async function showCommand(pidText: string, o: ShowOptions): Promise<void> {
  const pid = parseUserPid(pidText);
  if (o.sort !== undefined && !(SHOW_SIZES as readonly string[]).includes(o.sort)) {
    throw usage(`unknown sort field "${o.sort}" (known: ${SHOW_SIZES.join(' ')})`);
  }
  let pm: Awaited<ReturnType<typeof processMemory>>;
  try {
    pm = await processMemory(pid, { mappings: true, ...observerSettings(o) });
  } catch (err) {
    throw explain(err, pid);
  }
  if (!pm.mappings) throw new CliError(`per-mapping figures ${PRIVILEGE}`, EXIT_RUNTIME);
  checkExactProcess(pm, true);
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
      observer: pm.observer,
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
      mappingName(m.mapping),
    ]);
    const totals = ['', '', ...SHOW_SIZES.map((k) => formatSize(pm[k], style)), `TOTAL (${maps.length} mappings)`];
    await out.write(renderTable(cols, rows, { header: o.header, totals }));
  }
  await out.flush();
}

/** Adds `pagewalk show` to the program. */
export function registerShow(program: Command): void {
  const command = program
    .command('show')
    .description("per-mapping figures of one process, like Android's showmap (sizes in kB)")
    .argument('<pid>', 'process id')
    .option('-k, --abbreviate', 'human units')
    .option('-s, --sort <field>', 'sort by vss rss pss uss shared swap (default: address order)')
    .option('-r, --reverse', 'reverse the sort')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'JSON, sizes in bytes');
  observerOption(command).action(showCommand);
}

// pagewalk libs: memory of each mapped file across processes, like librank.
import type { Command } from 'commander';
import { addFigures, emptyFigures, type MemoryFigures } from '../../accounting';
import { mappingName } from '../../proc/maps';
import { checkExact, measure, type ObserverOption, observerOption, processFilter } from '../measure';
import { parseRegex } from '../options';
import { Output } from '../output';
import { type Column, formatSize, renderTable, type UnitStyle } from '../render';

interface LibsOptions extends ObserverOption {
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
  const snap = await measure({ filter: processFilter(o), mappings: true }, o);
  checkExact(snap, { ...o, perMapping: true });
  interface Lib {
    path: string;
    f: MemoryFigures;
    procs: Map<number, { name: string; f: MemoryFigures }>;
  }
  const libs = new Map<string, Lib>();
  for (const p of snap.processes) {
    for (const m of p.mappings ?? []) {
      // librank ranks files; anonymous and pseudo mappings only with --all.
      const path = mappingName(m.mapping);
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
      source: snap.source,
      observer: snap.observer,
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

/** Adds `pagewalk libs` to the program. */
export function registerLibs(program: Command): void {
  const command = program
    .command('libs')
    .description('memory of each mapped file across processes, like librank (sizes in kB)')
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches')
    .option('-M, --mapfilter <regex>', 'only files whose path matches')
    .option('-a, --all', 'include anonymous and pseudo mappings ([heap], [stack], <anonymous>)')
    .option('-k, --abbreviate', 'human units')
    .option('-H, --no-header', 'no header line')
    .option('--json', 'JSON, sizes in bytes');
  observerOption(command).action(libsCommand);
}

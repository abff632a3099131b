// pagewalk pages PID [RANGE]: raw pagemap entries, decoded, one per page or as runs.
import type { Command } from 'commander';
import { decodeEntry, openPagemap, type PagemapHandle, PM_FLAG_MASK, runLengths } from '../../pagemap';
import { walk } from '../../walk';
import { explain, PRIVILEGE, parsePid, usage } from '../errors';
import { Output, warn } from '../output';
import { hex } from '../render';

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

/** Adds `pagewalk pages` to the program. */
export function registerPages(program: Command): void {
  program
    .command('pages')
    .description('raw pagemap entries of a process, decoded')
    .argument('<pid>', 'process id')
    .argument('[range]', 'hex address range START-END (default: every mapping)')
    .option('--runs', 'run-length ranges of identical state instead of one line per page')
    .option('--json', 'JSON')
    .action(pagesCommand);
}

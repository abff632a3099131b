// pagewalk pages PID [RANGE]: raw pagemap entries, decoded: one line per
// populated page (every page with --all), or run-length ranges with --runs.
import type { Command } from 'commander';
import { KERNEL_HALF, PAGE_SHIFT } from '../../page';
import {
  decodeEntry,
  PM_EXCLUSIVE,
  PM_FILE,
  PM_FLAG_MASK,
  PM_GUARD,
  PM_PFN_MASK,
  PM_PRESENT,
  PM_SOFT_DIRTY,
  PM_SWAPPED,
  PM_UFFD_WP,
  runLengths,
} from '../../pagemap';
import { swappedShmemRuns } from '../../shmem-swap';
import { type WalkChunk, walk } from '../../walk';
import { explain, PRIVILEGE, usage } from '../errors';
import { parseUserPid } from '../options';
import { Output, warn } from '../output';
import { hex } from '../render';

interface PagesOptions {
  runs?: boolean;
  json?: boolean;
  all?: boolean;
}

function parseRange(text: string): [bigint, bigint] {
  const m = /^(?:0x)?([0-9a-f]+)-(?:0x)?([0-9a-f]+)$/i.exec(text);
  if (!m) throw usage(`invalid range "${text}" (expected hex START-END, e.g. 7f0000000000-7f0000100000)`);
  const start = BigInt(`0x${m[1]}`) & ~0xfffn;
  const end = (BigInt(`0x${m[2]}`) + 0xfffn) & ~0xfffn;
  if (end <= start) throw usage(`invalid range "${text}": END must be above START`);
  if (end > 1n << 64n) throw usage(`invalid range "${text}": beyond the 64-bit address space`);
  // The kernel's half has no pagemap entries: walk() stops below it.
  return [start < KERNEL_HALF ? start : KERNEL_HALF, end < KERNEL_HALF ? end : KERNEL_HALF];
}

/**
 * Not a pagemap bit (pagemap leaves bits 59 and 60 zero): marks a page that
 * pagemap shows as absent but whose shmem file page is in swap (cachestat),
 * which smaps counts in Swap.
 */
const SHMEM_SWAPPED = 1n << 60n;

const FLAG_NAMES: [bigint, string][] = [
  [SHMEM_SWAPPED, 'shmem-swapped'],
  [PM_PRESENT, 'present'],
  [PM_SWAPPED, 'swapped'],
  [PM_FILE, 'file'],
  [PM_GUARD, 'guard'],
  [PM_UFFD_WP, 'uffd-wp'],
  [PM_EXCLUSIVE, 'exclusive'],
  [PM_SOFT_DIRTY, 'soft-dirty'],
];

/**
 * The chunk with the SHMEM_SWAPPED mark on the pages of a shmem mapping that
 * pagemap shows as absent but whose file page is in swap (a copy of the
 * entries, or entries made for a chunk that had none).
 */
function withShmemSwap(pid: number, chunk: WalkChunk): WalkChunk {
  const runs = swappedShmemRuns(pid, chunk);
  if (runs.length === 0) return chunk;
  const entries = chunk.entries ? BigUint64Array.from(chunk.entries) : new BigUint64Array(chunk.pages);
  for (let r = 0; r < runs.length; r += 2) {
    for (let i = runs[r]; i < runs[r] + runs[r + 1]; i++) entries[i] |= SHMEM_SWAPPED;
  }
  return { ...chunk, entries };
}

function flagList(state: bigint): string[] {
  return FLAG_NAMES.filter(([bit]) => (state & bit) !== 0n).map(([, n]) => n);
}

async function pagesCommand(pidText: string, rangeText: string | undefined, o: PagesOptions): Promise<void> {
  const pid = parseUserPid(pidText);
  const range = rangeText === undefined ? undefined : parseRange(rangeText);
  const out = new Output();
  // Per page, like page-types: only populated (present or swapped) pages
  // unless --all; a 64 GiB reservation would otherwise print 16 million lines.
  const everyPage = Boolean(o.all);
  let leftOut = 0;
  try {
    const chunks = walk(pid, range && { start: range[0], end: range[1] });
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
      const end = run.start + (BigInt(run.pages) << PAGE_SHIFT);
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
      if (run && run.state === state && run.start + (BigInt(run.pages) << PAGE_SHIFT) === start) {
        run.pages += pages;
        return;
      }
      await emitRun();
      run = { start, pages, state };
    };
    if (o.runs && !o.json)
      await out.write(`${'START'.padEnd(18)} ${'END'.padEnd(18)} ${'PAGES'.padStart(10)}  STATE\n`);
    if (!o.runs && !o.json) await out.write(`${'ADDRESS'.padEnd(18)} ${'FLAGS'.padEnd(42)} PFN/SWAP\n`);
    for await (const chunk of chunks) {
      const s = withShmemSwap(pid, chunk);
      if (s.entries === null) {
        if (o.runs) await addRun(s.address, s.pages, 0n);
        else if (!everyPage) leftOut += s.pages;
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
          if (state & PM_PRESENT) {
            sawPresent = true;
            if (s.entries[Number(idx)] & PM_PFN_MASK) sawPfn = true;
          }
          await addRun(s.address + (idx << PAGE_SHIFT), len, state & PM_FLAG_MASK);
        }
        continue;
      }
      for (let i = 0; i < s.entries.length; i++) {
        const d = decodeEntry(s.entries[i]);
        const shmemSwapped = (s.entries[i] & SHMEM_SWAPPED) !== 0n;
        if (!everyPage && !d.present && !d.swapped && !shmemSwapped) {
          leftOut++;
          continue;
        }
        const address = s.address + (BigInt(i) << PAGE_SHIFT);
        if (d.present) {
          sawPresent = true;
          if (d.pfn) sawPfn = true;
        }
        const flags = flagList(s.entries[i]);
        const where = d.present
          ? `pfn=${hex(d.pfn ?? 0n)}`
          : d.swapped
            ? `swap=${d.swapType}:${hex(d.swapOffset ?? 0n)}`
            : shmemSwapped
              ? 'shmem swap (no swap entry in the page table)'
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
    if (leftOut > 0) process.stderr.write(`pagewalk: ${leftOut} untouched pages left out (--all lists every page)\n`);
    if (sawPresent && !sawPfn && !o.runs) warn(`PFNs read as 0: showing them ${PRIVILEGE}`);
  } catch (err) {
    throw explain(err, pid);
  }
}

/** Adds `pagewalk pages` to the program. */
export function registerPages(program: Command): void {
  program
    .command('pages')
    .description('raw pagemap entries of a process, decoded (populated pages; --all for every page)')
    .argument('<pid>', 'process id')
    .argument('[range]', 'hex address range START-END (default: every mapping)')
    .option('--runs', 'run-length ranges of identical state instead of one line per page')
    .option('-a, --all', 'every page, untouched ones too (default: present or swapped pages only)')
    .option('--json', 'JSON')
    .action(pagesCommand);
}

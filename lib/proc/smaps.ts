// /proc/PID/smaps and /proc/PID/smaps_rollup: maps lines followed by
// "Key: N kB" fields.
import { isMapsLine, type Mapping, parseMapsLine } from './maps';
import { readProcFile, readProcFileAsync } from './read';

/** Every `Key: N kB` field of an smaps entry, in kB as the kernel prints them. */
export type SmapsFields = Record<string, number>;

export interface SmapsEntry extends Mapping {
  fields: SmapsFields;
  /** Two-letter VmFlags codes ("rd", "wr", "mr", "ht" ...). */
  vmFlags: string[];
}

export interface SmapsRollup {
  /** The address range the rollup covers (first mapping start to last end). */
  start: bigint;
  end: bigint;
  fields: SmapsFields;
}

const FIELD_LINE = /^([A-Za-z_]+):\s+(\d+) kB$/;

/** Parses /proc/PID/smaps: one entry per mapping with all its fields. */
export function parseSmaps(text: string): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  let current: SmapsEntry | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const field = FIELD_LINE.exec(line);
    if (field && current) {
      current.fields[field[1]] = Number(field[2]);
    } else if (line.startsWith('VmFlags:') && current) {
      current.vmFlags = line.slice(8).trim().split(/\s+/).filter(Boolean);
    } else if (isMapsLine(line)) {
      current = { ...parseMapsLine(line), fields: {}, vmFlags: [] };
      out.push(current);
    } else if (/^[A-Za-z_]+:/.test(line) && current) {
      // A field without the " kB" unit (THPeligible, ProtectionKey).
      const [key, value] = line.split(/:\s*/, 2);
      const n = Number(value);
      if (Number.isFinite(n)) current.fields[key] = n;
    } else {
      throw new SyntaxError(`unexpected smaps line: ${JSON.stringify(line)}`);
    }
  }
  return out;
}

/** Parses /proc/PID/smaps_rollup. */
export function parseSmapsRollup(text: string): SmapsRollup {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = /^([0-9a-f]+)-([0-9a-f]+) /.exec(lines[0] ?? '');
  if (!header) throw new SyntaxError('smaps_rollup has no range line');
  const fields: SmapsFields = {};
  for (const line of lines.slice(1)) {
    const f = FIELD_LINE.exec(line);
    if (f) fields[f[1]] = Number(f[2]);
  }
  return { start: BigInt(`0x${header[1]}`), end: BigInt(`0x${header[2]}`), fields };
}

/** An empty rollup, which is what the kernel prints for a kernel thread. */
function emptyRollup(): SmapsRollup {
  return { start: 0n, end: 0n, fields: {} };
}

export function readSmaps(pid: number): SmapsEntry[] {
  return parseSmaps(readProcFile(pid, 'smaps'));
}

export async function readSmapsAsync(pid: number): Promise<SmapsEntry[]> {
  return parseSmaps(await readProcFileAsync(pid, 'smaps'));
}

/**
 * smaps_rollup appeared in Linux 4.14. PAGEWALK_NO_SMAPS_ROLLUP=1 pretends
 * it is missing, which is how tests force the fallback: summing smaps.
 */
export function smapsRollupDisabled(): boolean {
  return process.env.PAGEWALK_NO_SMAPS_ROLLUP === '1';
}

/** Fields summed into a rollup; the rest (Size, KernelPageSize, THPeligible ...) are per mapping. */
const ROLLUP_SUMMED = [
  'Rss',
  'Pss',
  'Pss_Dirty',
  'Shared_Clean',
  'Shared_Dirty',
  'Private_Clean',
  'Private_Dirty',
  'Referenced',
  'Anonymous',
  'KSM',
  'LazyFree',
  'AnonHugePages',
  'ShmemPmdMapped',
  'FilePmdMapped',
  'Shared_Hugetlb',
  'Private_Hugetlb',
  'Swap',
  'SwapPss',
  'Locked',
];

/** Mappings whose pages are shmem (tmpfs, /dev/zero MAP_SHARED, SysV shm, memfd): device major 0 with an inode. */
function onShmem(e: Mapping): boolean {
  return e.deviceMajor === 0 && e.inode !== 0n;
}

/**
 * A rollup summed from smaps entries, for kernels without smaps_rollup.
 * Page counts (Rss, Private_*, Shared_*, Anonymous, Swap ...) are exact;
 * Pss and SwapPss can fall short of the kernel's rollup by less than 1 kB
 * per mapping, because the kernel sums them in fixed point before
 * truncating to kB and smaps truncates each mapping. smaps has no
 * Pss_Anon/Pss_File/Pss_Shmem per mapping: they are estimated from each
 * mapping's Pss in proportion to its anonymous share of Rss.
 */
export function rollupFromSmaps(entries: SmapsEntry[]): SmapsRollup {
  const fields: SmapsFields = {};
  for (const k of ROLLUP_SUMMED) fields[k] = 0;
  fields.Pss_Anon = 0;
  fields.Pss_File = 0;
  fields.Pss_Shmem = 0;
  // The gate area ([vsyscall]) is not a vma: the kernel's rollup leaves it out.
  const user = entries.filter((e) => e.start < 1n << 63n);
  for (const e of user) {
    for (const k of ROLLUP_SUMMED) fields[k] += e.fields[k] ?? 0;
    const pss = e.fields.Pss ?? 0;
    const rss = e.fields.Rss ?? 0;
    const anon = rss > 0 ? Math.min(pss, Math.round((pss * (e.fields.Anonymous ?? 0)) / rss)) : 0;
    fields.Pss_Anon += anon;
    if (onShmem(e)) fields.Pss_Shmem += pss - anon;
    else fields.Pss_File += pss - anon;
  }
  return { start: user[0]?.start ?? 0n, end: user[user.length - 1]?.end ?? 0n, fields };
}

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export function readSmapsRollup(pid: number): SmapsRollup {
  if (smapsRollupDisabled()) return rollupFromSmaps(readSmaps(pid));
  let text: string;
  try {
    text = readProcFile(pid, 'smaps_rollup');
  } catch (err) {
    // No smaps_rollup (before 4.14), or no process: smaps tells which.
    if (missing(err)) return rollupFromSmaps(readSmaps(pid));
    throw err;
  }
  return text === '' ? emptyRollup() : parseSmapsRollup(text);
}

export async function readSmapsRollupAsync(pid: number): Promise<SmapsRollup> {
  if (smapsRollupDisabled()) return rollupFromSmaps(await readSmapsAsync(pid));
  let text: string;
  try {
    text = await readProcFileAsync(pid, 'smaps_rollup');
  } catch (err) {
    if (missing(err)) return rollupFromSmaps(await readSmapsAsync(pid));
    throw err;
  }
  return text === '' ? emptyRollup() : parseSmapsRollup(text);
}

// Parsers for /proc/PID/maps, /proc/PID/smaps and /proc/PID/smaps_rollup.
// Addresses, offsets and inodes are bigints: [vsyscall] sits at
// 0xffffffffff600000, above 2^53, where a number would lose bits.
import * as fs from 'node:fs';
import { validatePid } from './errors';

export interface Mapping {
  start: bigint;
  end: bigint;
  /** end - start in bytes (exact: no mapping is near 2^53 bytes). */
  size: number;
  /** The four permission characters as the kernel prints them, e.g. "r-xp". */
  perms: string;
  read: boolean;
  write: boolean;
  execute: boolean;
  /** 's' (MAP_SHARED) rather than 'p' (private, copy-on-write). */
  shared: boolean;
  offset: bigint;
  deviceMajor: number;
  deviceMinor: number;
  inode: bigint;
  /** Path or pseudo-path ("[heap]", "[stack]", "/dev/zero (deleted)"), '' when anonymous. */
  path: string;
  /** The path ended in " (deleted)": the file was unlinked while mapped. */
  deleted: boolean;
}

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

const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)(?: +(.*))?$/;

/** Parses one line of /proc/PID/maps; throws SyntaxError on a malformed line. */
export function parseMapsLine(line: string): Mapping {
  const m = MAPS_LINE.exec(line);
  if (!m) throw new SyntaxError(`not a maps line: ${JSON.stringify(line)}`);
  const start = BigInt(`0x${m[1]}`);
  const end = BigInt(`0x${m[2]}`);
  const perms = m[3];
  // The kernel pads the path column with spaces; a path may itself contain
  // spaces (and even end in them), so only the padding before it is dropped.
  const rawPath = m[8] ?? '';
  const deleted = rawPath.endsWith(' (deleted)');
  return {
    start,
    end,
    size: Number(end - start),
    perms,
    read: perms[0] === 'r',
    write: perms[1] === 'w',
    execute: perms[2] === 'x',
    shared: perms[3] === 's',
    offset: BigInt(`0x${m[4]}`),
    deviceMajor: Number.parseInt(m[5], 16),
    deviceMinor: Number.parseInt(m[6], 16),
    inode: BigInt(m[7]),
    path: rawPath,
    deleted,
  };
}

export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) if (line !== '') out.push(parseMapsLine(line));
  return out;
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
    } else if (MAPS_LINE.test(line)) {
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

function procPath(pid: number, file: string): string {
  return `/proc/${validatePid(pid)}/${file}`;
}

export function readMaps(pid: number): Mapping[] {
  return parseMaps(fs.readFileSync(procPath(pid, 'maps'), 'utf8'));
}

export async function readMapsAsync(pid: number): Promise<Mapping[]> {
  return parseMaps(await fs.promises.readFile(procPath(pid, 'maps'), 'utf8'));
}

export function readSmaps(pid: number): SmapsEntry[] {
  return parseSmaps(fs.readFileSync(procPath(pid, 'smaps'), 'utf8'));
}

export function readSmapsRollup(pid: number): SmapsRollup {
  const text = fs.readFileSync(procPath(pid, 'smaps_rollup'), 'utf8');
  return text === '' ? emptyRollup() : parseSmapsRollup(text);
}

export async function readSmapsRollupAsync(pid: number): Promise<SmapsRollup> {
  const text = await fs.promises.readFile(procPath(pid, 'smaps_rollup'), 'utf8');
  return text === '' ? emptyRollup() : parseSmapsRollup(text);
}

// /proc/PID/maps: one line per mapping. Addresses, offsets and inodes are
// bigints: [vsyscall] sits at 0xffffffffff600000, above 2^53, where a number
// would lose bits.
import { readProcFile, readProcFileAsync } from './read';

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

/** The name of a mapping with no path, as smem writes it: every view and every record uses it. */
export const ANONYMOUS = '<anonymous>';

/** A mapping's path, or ANONYMOUS. */
export function mappingName(m: Mapping): string {
  return m.path || ANONYMOUS;
}

// The path may hold any byte but a newline (which the kernel escapes as
// \012): the s flag lets `.` match \r, U+2028 and U+2029 too, so that no
// file name can make a process unmeasurable.
const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)(?: +(.*))?$/s;

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

/** Whether a line is a maps line (smaps interleaves them with field lines). */
export function isMapsLine(line: string): boolean {
  return MAPS_LINE.test(line);
}

export function readMaps(pid: number): Mapping[] {
  return parseMaps(readProcFile(pid, 'maps'));
}

export async function readMapsAsync(pid: number): Promise<Mapping[]> {
  return parseMaps(await readProcFileAsync(pid, 'maps'));
}

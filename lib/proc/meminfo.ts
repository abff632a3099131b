// /proc/meminfo: "Key:   N kB" lines, and a few counts without a unit (HugePages_*).
import * as fs from 'node:fs';
import { withPath } from '../errors';

/** Every field: sizes in bytes, counts as they are. */
export type Meminfo = Record<string, number>;

export function parseMeminfo(text: string): Meminfo {
  const out: Meminfo = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * (line.endsWith('kB') ? 1024 : 1);
  }
  return out;
}

export function readMeminfo(): Meminfo {
  return parseMeminfo(withPath('/proc/meminfo', () => fs.readFileSync('/proc/meminfo', 'utf8')));
}

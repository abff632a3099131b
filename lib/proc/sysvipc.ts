// /proc/sysvipc/shm: the System V shared memory segments, with what each
// holds in memory (rss) and in swap.
import * as fs from 'node:fs';
import { withPath } from '../errors';

export interface ShmSegment {
  key: number;
  shmid: number;
  /** Size asked for, in bytes. */
  size: number;
  /** Processes attached. */
  attached: number;
  /** Pid of the creator and of the last shmat/shmdt. */
  creatorPid: number;
  lastPid: number;
  /** Resident bytes. */
  rss: number;
  /** Bytes in swap. */
  swap: number;
}

export function parseSysvShm(text: string): ShmSegment[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  const header = lines[0].trim().split(/\s+/);
  const col = (name: string) => header.indexOf(name);
  const out: ShmSegment[] = [];
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/);
    const num = (name: string) => (col(name) >= 0 ? Number(f[col(name)]) : 0);
    out.push({
      key: num('key'),
      shmid: num('shmid'),
      size: num('size'),
      attached: num('nattch'),
      creatorPid: num('cpid'),
      lastPid: num('lpid'),
      rss: num('rss'),
      swap: num('swap'),
    });
  }
  return out;
}

export function readSysvShm(): ShmSegment[] {
  const path = '/proc/sysvipc/shm';
  if (!fs.existsSync(path)) return [];
  return parseSysvShm(withPath(path, () => fs.readFileSync(path, 'utf8')));
}

// Independent readers written inside the tests: plain fs.readSync over the
// kernel files, used to check the addon's bulk paths entry for entry.
import * as fs from 'node:fs';
import type { ProcessMemory } from '../../lib/index';

export function readPagemapPlain(pid: number, address: bigint, pages: number): BigUint64Array {
  const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    const buf = Buffer.alloc(pages * 8);
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(fd, buf, done, buf.length - done, Number((address >> 12n) * 8n) + done);
      if (n === 0) break;
      done += n;
    }
    return new BigUint64Array(buf.buffer, buf.byteOffset, done / 8);
  } finally {
    fs.closeSync(fd);
  }
}

export function readKpage(file: 'kpagecount' | 'kpageflags', pfn: bigint): bigint {
  const fd = fs.openSync(`/proc/${file}`, 'r');
  try {
    const buf = Buffer.alloc(8);
    fs.readSync(fd, buf, 0, 8, Number(pfn * 8n));
    return buf.readBigUInt64LE(0);
  } finally {
    fs.closeSync(fd);
  }
}

/** smaps_rollup fields in kB. */
export function rollup(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export function swapOn(): boolean {
  return fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n').length > 1;
}

/** The figures compared with smaps_rollup: ours and the kernel's names. */
export const ROLLUP_KEYS: [keyof ProcessMemory, string][] = [
  ['rss', 'Rss'],
  ['pss', 'Pss'],
  ['pssAnon', 'Pss_Anon'],
  ['pssFile', 'Pss_File'],
  ['pssShmem', 'Pss_Shmem'],
  ['swap', 'Swap'],
  ['anonymous', 'Anonymous'],
  ['ksm', 'KSM'],
  ['anonHugePages', 'AnonHugePages'],
];

/** Our figures in the kernel's kB, truncated as smaps_rollup truncates. */
export function inKb(r: ProcessMemory): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [ours, theirs] of ROLLUP_KEYS) out[theirs] = Math.floor((r[ours] as number) / 1024);
  out.Private = Math.floor(r.uss / 1024);
  return out;
}

/** The same figures from the kernel's smaps_rollup. */
export function kernelKb(pid: number): Record<string, number> {
  const k = rollup(pid);
  const out: Record<string, number> = {};
  for (const [, theirs] of ROLLUP_KEYS) out[theirs] = k[theirs] ?? 0;
  out.Private = (k.Private_Clean ?? 0) + (k.Private_Dirty ?? 0);
  return out;
}

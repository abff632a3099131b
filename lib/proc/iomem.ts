// /proc/iomem: the physical address map. Its top-level "System RAM" lines
// are the page frames that are memory; the rest of the PFN space is holes
// (PCI windows, firmware). Only root sees the addresses (others read zeros).
import * as fs from 'node:fs';
import { withPath } from '../errors';

export interface PfnRange {
  /** First page frame. */
  start: number;
  /** One past the last page frame. */
  end: number;
}

/**
 * The page frames wholly inside top-level "System RAM" ranges, sorted and
 * merged. Empty when the addresses are hidden (every line reads 0-0).
 */
export function parseSystemRam(text: string, pageShift = 12): PfnRange[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const page = 2 ** pageShift;
  const out: PfnRange[] = [];
  for (const line of text.split('\n')) {
    // Nested lines are indented: only top-level ranges describe memory.
    const m = /^([0-9a-f]+)-([0-9a-f]+) : System RAM$/.exec(line);
    if (!m) continue;
    const first = Number.parseInt(m[1], 16);
    const last = Number.parseInt(m[2], 16);
    if (last <= first) continue;
    // A range may start or end inside a page (e.g. ...-0009fbff): only whole pages are RAM.
    const start = Math.ceil(first / page);
    const end = Math.floor((last + 1) / page);
    if (end <= start) continue;
    const prev = out.at(-1);
    if (prev && start <= prev.end) prev.end = Math.max(prev.end, end);
    else out.push({ start, end });
  }
  return out.sort((a, b) => a.start - b.start);
}

export function readSystemRam(): PfnRange[] {
  return parseSystemRam(withPath('/proc/iomem', () => fs.readFileSync('/proc/iomem', 'utf8')));
}

const KERNEL_IMAGE = /^ +([0-9a-f]+)-([0-9a-f]+) : Kernel (?:code|rodata|data|bss)$/;

/**
 * Bytes of the kernel image: the "Kernel code", "rodata", "data" and "bss"
 * ranges nested under System RAM (what smem -w shows as "kernel image" when
 * given the kernel file). null when the addresses are hidden.
 */
export function parseKernelImage(text: string): number | null {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  let bytes = 0;
  for (const line of text.split('\n')) {
    const m = KERNEL_IMAGE.exec(line);
    // Hidden addresses read 00000000-00000000.
    if (m && Number.parseInt(m[2], 16) > 0) bytes += Number.parseInt(m[2], 16) + 1 - Number.parseInt(m[1], 16);
  }
  return bytes > 0 ? bytes : null;
}

export function readKernelImage(): number | null {
  return parseKernelImage(withPath('/proc/iomem', () => fs.readFileSync('/proc/iomem', 'utf8')));
}

// pagewalk pages against plain reads of /proc/PID/pagemap.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fx, ok, run, useCliFixtures } from '../helpers/cli';

useCliFixtures();

describe('pagewalk pages', () => {
  const heapOf = (pid: number) => {
    const line = fs
      .readFileSync(`/proc/${pid}/maps`, 'utf8')
      .split('\n')
      .find((l) => l.endsWith('[heap]')) as string;
    return line.split(' ')[0];
  };

  function plainEntries(pid: number, start: bigint, pages: number): bigint[] {
    const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    try {
      const buf = Buffer.alloc(pages * 8);
      fs.readSync(fd, buf, 0, buf.length, Number((start >> 12n) * 8n));
      return Array.from({ length: pages }, (_, i) => buf.readBigUInt64LE(i * 8));
    } finally {
      fs.closeSync(fd);
    }
  }

  it('decodes each entry of a range like a plain read of pagemap', () => {
    const range = heapOf(fx.sleeps[0]);
    const [s, e] = range.split('-').map((x) => BigInt(`0x${x}`));
    const pages = Number((e - s) >> 12n);
    const entries = plainEntries(fx.sleeps[0], s, pages);
    const out = JSON.parse(ok(['pages', String(fx.sleeps[0]), range, '--all', '--json'])) as {
      address?: string;
      pages?: number;
      flags: string[];
      pfn?: number | null;
    }[];
    let i = 0;
    for (const rec of out) {
      if (rec.pages !== undefined) {
        // A stretch with nothing present or swapped.
        for (let k = 0; k < rec.pages; k++) expect(entries[i + k] & (3n << 62n)).toBe(0n);
        i += rec.pages;
        continue;
      }
      expect(BigInt(rec.address as string)).toBe(s + (BigInt(i) << 12n));
      expect(rec.flags.includes('present')).toBe((entries[i] & (1n << 63n)) !== 0n);
      expect(rec.flags.includes('exclusive')).toBe((entries[i] & (1n << 56n)) !== 0n);
      if (rec.flags.includes('present')) expect(BigInt(rec.pfn as number)).toBe(entries[i] & ((1n << 55n) - 1n));
      i++;
    }
    expect(i).toBe(pages);
    const text = ok(['pages', String(fx.sleeps[0]), range, '--all'])
      .trimEnd()
      .split('\n');
    expect(text[0]).toMatch(/^ADDRESS\s+FLAGS\s+PFN\/SWAP$/);
    expect(text[1]).toMatch(/^0x[0-9a-f]+\s+present,exclusive(,soft-dirty)?\s+pfn=0x[0-9a-f]+$/);
  });

  it('run-length encodes a whole process into ranges covering every mapping', () => {
    const runs = JSON.parse(ok(['pages', String(fx.holder), '--runs', '--json'])) as {
      start: string;
      end: string;
      pages: number;
      flags: string[];
    }[];
    let total = 0;
    for (const r of runs) {
      expect(Number((BigInt(r.end) - BigInt(r.start)) >> 12n)).toBe(r.pages);
      total += r.pages;
    }
    let mapped = 0;
    for (const line of fs.readFileSync(`/proc/${fx.holder}/maps`, 'utf8').trim().split('\n')) {
      const [s, e] = line
        .split(' ')[0]
        .split('-')
        .map((x) => BigInt(`0x${x}`));
      if (s < 1n << 63n) mapped += Number((e - s) >> 12n);
    }
    expect(total).toBe(mapped);
    // Neighbouring runs differ in state or are not contiguous.
    for (let i = 1; i < runs.length; i++) {
      if (runs[i].start === runs[i - 1].end) expect(runs[i].flags).not.toEqual(runs[i - 1].flags);
    }
    // The 16 MiB buffer is one long run of exclusive resident pages.
    expect(runs.some((r) => r.pages >= 4096 && r.flags.includes('present') && r.flags.includes('exclusive'))).toBe(
      true,
    );
    const text = ok(['pages', String(fx.holder), '--runs']).split('\n');
    expect(text[0]).toMatch(/^START\s+END\s+PAGES\s+STATE$/);
  });

  it('lists populated pages only by default, says how many untouched ones it left out, and --all keeps them', () => {
    const runs = JSON.parse(ok(['pages', String(fx.holder), '--runs', '--json'])) as {
      pages: number;
      flags: string[];
    }[];
    const total = runs.reduce((a, r) => a + r.pages, 0);
    const populated = runs
      .filter((r) => r.flags.includes('present') || r.flags.includes('swapped'))
      .reduce((a, r) => a + r.pages, 0);
    expect(populated).toBeGreaterThanOrEqual(4096); // the 16 MiB buffer
    expect(total - populated).toBeGreaterThan(0);
    const r = run(['pages', String(fx.holder)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').slice(1);
    expect(lines).toHaveLength(populated);
    for (const line of lines) expect(line).toMatch(/^0x[0-9a-f]+\s+\S*(present|swapped)/);
    expect(r.stderr).toBe(`pagewalk: ${total - populated} untouched pages left out (--all lists every page)\n`);
    const json = run(['pages', String(fx.holder), '--json']);
    expect(JSON.parse(json.stdout)).toHaveLength(populated);
    expect(json.stderr).toBe(r.stderr);
    // --all: every page, one line each or one line per untouched stretch.
    const all = ok(['pages', String(fx.holder), '--all', '--json']);
    const records = JSON.parse(all) as { pages?: number }[];
    expect(records.reduce((a, x) => a + (x.pages ?? 1), 0)).toBe(total);
  });

  it('rejects a malformed range', () => {
    const r = run(['pages', String(fx.holder), 'zz-1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^pagewalk: invalid range "zz-1"/);
  });
});

// pagewalk picture: bands, gaps and the zero page.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fx, mapsCount, ok, TAG, useCliFixtures } from '../helpers/cli';
import { startFixture } from '../helpers/fixture';
import { kernel, skipUnless, zeroPageRegions } from '../helpers/kernel';
import { swapOn } from '../helpers/oracle';

useCliFixtures();

describe('pagewalk picture', () => {
  it('draws every mapping as a band and compresses the gaps', () => {
    const file = path.join(os.tmpdir(), `pagewalk-picture-${TAG}.svg`);
    try {
      expect(ok(['picture', String(fx.holder), '-o', file])).toBe('');
      const svg = fs.readFileSync(file, 'utf8');
      expect(svg.startsWith('<?xml')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      const labels = svg.match(/>0x[0-9a-f]+-0x[0-9a-f]+ /g) ?? [];
      expect(labels).toHaveLength(mapsCount(fx.holder));
      expect(svg).toMatch(/… [\d.]+ TiB unmapped …/);
      expect(svg).toContain('#D55E00'); // resident exclusive: the buffer
      const height = Number(/height="(\d+)"/.exec(svg)?.[1]);
      expect(height).toBeLessThan(100 + mapsCount(fx.holder) * 26);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

describe('zero page', () => {
  it('colours pages that map the shared zero page apart from shared memory', async (ctx) => {
    // The zero page, by a read fault or UFFDIO_ZEROPAGE: whichever this kernel has.
    const regions = zeroPageRegions();
    skipUnless(
      ctx,
      regions.length > 0,
      `no way to the zero page (read faults: ${kernel().readFault}; UFFDIO_ZEROPAGE: errno ${kernel().raw.uffdZeroPageErrno})`,
    );
    const zeroFx = await startFixture(regions);
    zeroFx.stop();
    const file = path.join(os.tmpdir(), `pagewalk-zero-${TAG}.svg`);
    try {
      expect(ok(['picture', String(zeroFx.pid), '-o', file])).toBe('');
      const svg = fs.readFileSync(file, 'utf8');
      // The legend swatch and at least one band segment.
      expect((svg.match(/fill="#F0E442"/g) ?? []).length).toBeGreaterThan(1);
    } finally {
      fs.rmSync(file, { force: true });
      await zeroFx.kill();
    }
  });
});

describe('swapped-out shared memory', () => {
  it('pages and picture mark the shmem pages in swap, which pagemap shows as absent', async (ctx) => {
    const shm = await startFixture(['swappedShared']);
    shm.stop();
    try {
      const region = shm.regions.swappedShared;
      const start = region.start.toString(16);
      const end = (region.start + BigInt(region.pages * 4096)).toString(16);
      // The kernel's own figure for the mapping: smaps Swap.
      const entry = fs
        .readFileSync(`/proc/${shm.pid}/smaps`, 'utf8')
        .split(/\n(?=[0-9a-f]+-)/)
        .find((e) => e.startsWith(`${start}-`));
      const swapKb = Number(/^Swap:\s+(\d+) kB$/m.exec(entry ?? '')?.[1] ?? 0);
      skipUnless(ctx, swapOn() && region.pageout === 1, 'no swap, or MADV_PAGEOUT refused: nothing to mark');
      skipUnless(ctx, swapKb > 0, 'the kernel put none of the shared pages in swap (smaps Swap: 0 kB)');
      const pages = JSON.parse(ok(['pages', String(shm.pid), `${start}-${end}`, '--json'])) as {
        address: string;
        flags: string[];
        swapType: number | null;
      }[];
      const marked = pages.filter((p) => p.flags.includes('shmem-swapped'));
      // Exactly the kernel's Swap, and none of them is present or has a swap entry.
      expect(marked.length * 4).toBe(swapKb);
      for (const p of marked) expect(p.flags).toEqual(['shmem-swapped']);
      const runs = ok(['pages', String(shm.pid), `${start}-${end}`, '--runs']);
      if (swapKb === region.pages * 4)
        expect(runs).toMatch(new RegExp(`^0x${start}\\s+0x${end}\\s+${region.pages}  shmem-swapped$`, 'm'));
      const file = path.join(os.tmpdir(), `pagewalk-shmswap-${TAG}.svg`);
      try {
        expect(ok(['picture', String(shm.pid), '-o', file])).toBe('');
        const svg = fs.readFileSync(file, 'utf8');
        const label = new RegExp(`<text x="\\d+" y="(\\d+)"[^>]*>0x${start}-0x${end} `).exec(svg);
        expect(label).not.toBeNull();
        // The band sits 10 px above its label; pink (swapped) over the share of its pages in swap.
        const y = Number(label?.[1]) - 10;
        const swappedWidth = [
          ...svg.matchAll(
            new RegExp(`<rect x="[\\d.]+" y="${y}" width="([\\d.]+)" height="\\d+" fill="#CC79A7"/>`, 'g'),
          ),
        ]
          .map((m) => Number(m[1]))
          .reduce((a, b) => a + b, 0);
        expect(swappedWidth).toBeCloseTo((512 * swapKb) / (region.pages * 4), 0);
      } finally {
        fs.rmSync(file, { force: true });
      }
    } finally {
      await shm.kill();
    }
  });
});

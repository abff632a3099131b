// pagewalk picture: bands, gaps and the zero page.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fx, mapsCount, ok, TAG, useCliFixtures } from '../helpers/cli';
import { startFixture } from '../helpers/fixture';
import { kernel, skipUnless, zeroPageRegions } from '../helpers/kernel';

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

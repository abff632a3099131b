// pagewalk show against smaps_rollup.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventually, fx, inProcess, mapsCount, ok, useCliFixtures } from '../helpers/cli';

useCliFixtures();

describe('pagewalk show', () => {
  it('lists every mapping and totals equal to smaps_rollup', async () => {
    await eventually(() => {
      const r = inProcess(['show', String(fx.holder), '--json', '--include-self'], [fx.holder]);
      const out = JSON.parse(r.out);
      expect(out.observer).toBe('included');
      const k = r.rollups[fx.holder];
      expect(Math.floor(out.totals.pss / 1024)).toBe(k.Pss);
      expect(Math.floor(out.totals.rss / 1024)).toBe(k.Rss);
      expect(Math.floor(out.totals.uss / 1024)).toBe(k.Private_Clean + k.Private_Dirty);
      const sum = out.mappings.reduce((a: number, m: { rss: number }) => a + m.rss, 0);
      expect(sum).toBe(out.totals.rss);
      const vsyscall = fs.readFileSync(`/proc/${fx.holder}/maps`, 'utf8').includes('[vsyscall]') ? 1 : 0;
      expect(out.mappings).toHaveLength(mapsCount(fx.holder) - vsyscall);
    });
    const table = ok(['show', String(fx.sleeps[0])])
      .trimEnd()
      .split('\n');
    expect(table[0].trim().split(/\s+/)).toEqual([
      'Address',
      'Perm',
      'Virtual',
      'RSS',
      'PSS',
      'USS',
      'Shared',
      'Swap',
      'Object',
    ]);
    expect(table.at(-1)).toMatch(/TOTAL \(\d+ mappings\)$/);
    expect(table.some((l) => l.endsWith('/usr/bin/sleep'))).toBe(true);
  });
});

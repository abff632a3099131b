import { describe, expect, it } from 'vitest';
import { eventually, fx, MATCH, ok, SLEEP_MATCH, useCliFixtures } from '../helpers/cli';

useCliFixtures();

describe('pagewalk libs', () => {
  it('ranks files by PSS with the processes mapping them', async () => {
    await eventually(() => {
      const libs = JSON.parse(ok(['libs', '--json', '-P', MATCH])).libraries as {
        path: string;
        pss: number;
        rss: number;
        processes: { pid: number; pss: number }[];
      }[];
      const libc = libs.find((l) => /\/libc\.so/.test(l.path));
      expect(libc?.processes.map((p) => p.pid).sort()).toEqual([...fx.pids].sort());
      for (const l of libs) {
        expect(l.path.startsWith('/')).toBe(true);
        // PSS sums in fixed point, so the file total may exceed the sum of truncated parts by a byte each.
        const parts = l.processes.reduce((a, p) => a + p.pss, 0);
        expect(l.pss - parts).toBeGreaterThanOrEqual(0);
        expect(l.pss - parts).toBeLessThanOrEqual(l.processes.length);
      }
      expect(libs.map((l) => l.pss)).toEqual([...libs.map((l) => l.pss)].sort((a, b) => b - a));
    });
    const text = ok(['libs', '-P', SLEEP_MATCH, '-M', 'bin/sleep']).trimEnd().split('\n');
    expect(text[0].trim().split(/\s+/)).toEqual(['RSS', 'PSS', 'USS', 'Swap', 'Library', '/', 'Process']);
    expect(text[1]).toMatch(/\/usr\/bin\/sleep$/);
    expect(
      text
        .slice(2)
        .map((l) => /\[(\d+)\]$/.exec(l)?.[1])
        .map(Number)
        .sort(),
    ).toEqual(fx.sleeps.map(Number).sort());
  });
});

// pagewalk picture: bands, gaps and the zero page.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { children, fx, mapsCount, ok, stop, TAG, useCliFixtures } from '../helpers/cli';

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
  it('colours pages that map the shared zero page apart from shared memory', async () => {
    // Reading untouched private anonymous memory maps the zero page.
    const script = [
      'import mmap, sys',
      'm = mmap.mmap(-1, 4 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, prot=mmap.PROT_READ | mmap.PROT_WRITE)',
      'sum(m[i] for i in range(0, 2 << 20, 4096))',
      'print("ready", flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const c = spawn('/usr/bin/python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(c);
    await new Promise<void>((resolve) => c.stdout?.once('data', () => resolve()));
    const pid = c.pid as number;
    stop(pid);
    const file = path.join(os.tmpdir(), `pagewalk-zero-${TAG}.svg`);
    try {
      expect(ok(['picture', String(pid), '-o', file])).toBe('');
      const svg = fs.readFileSync(file, 'utf8');
      // The legend swatch and at least one band segment.
      expect((svg.match(/fill="#F0E442"/g) ?? []).length).toBeGreaterThan(1);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});

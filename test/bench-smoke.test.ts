// Smoke run of the benchmark harness at tiny sizes: it starts, measures every
// scenario and case, kills its scenario processes and reports JSON of the
// documented shape. Benchmarks are not timed tests: no time is asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

interface CaseResult {
  name: string;
  kind: string;
  medianMs: number;
  minMs: number;
  maxMs: number;
  timesMs: number[];
  rssAddedMiB: number | null;
  ratios: Record<string, number>;
  entriesPerSec?: number;
  gbPerSec?: number;
}

interface Report {
  machine: { nproc: number; ramGiB: number; kernel: string; node: string };
  scale: string;
  runs: number;
  scenarios: { id: string; title: string; cases: CaseResult[]; entries?: number }[];
  targets: { name: string; goal: string; value: number | null; met: boolean | null }[];
}

function scenarioPids(): number[] {
  const out = spawnSync('pgrep', ['-f', path.join(ROOT, 'benchmarks', '.bench-tmp', 'scenario')], { encoding: 'utf8' });
  return out.stdout.split('\n').filter(Boolean).map(Number);
}

describe('benchmark harness (tiny smoke run)', () => {
  it('runs every scenario and reports JSON of the documented shape', { timeout: 60_000 }, () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'index.js')), 'dist/ is built (npm run build)').toBe(true);
    const before = new Set(scenarioPids());
    const stdout = execFileSync(
      process.execPath,
      [path.join(ROOT, 'benchmarks', 'run.js'), '--scale', 'tiny', '--json', '--runs', '1', '--warmup', '0'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 55_000,
        maxBuffer: 16 << 20,
      },
    );
    const report = JSON.parse(stdout) as Report;
    expect(report.scale).toBe('tiny');
    expect(report.runs).toBe(1);
    expect(report.machine.nproc).toBeGreaterThan(0);
    expect(typeof report.machine.kernel).toBe('string');
    expect(report.scenarios.map((s) => s.id)).toEqual(['dense', 'sparse', 'maps', 'shared', 'system']);
    for (const s of report.scenarios) {
      const kinds = new Set(s.cases.map((c) => c.kind));
      expect(kinds.has('pread'), `${s.id} has the C baseline`).toBe(true);
      expect(kinds.has('smapsRollup'), `${s.id} has the smaps_rollup baseline`).toBe(true);
      expect(s.entries).toBeGreaterThan(0);
      for (const c of s.cases) {
        expect(c.timesMs).toHaveLength(1);
        expect(Number.isFinite(c.medianMs) && c.medianMs >= 0).toBe(true);
        expect(c.minMs).toBeLessThanOrEqual(c.maxMs);
        expect(typeof c.ratios).toBe('object');
        expect(c.gbPerSec).toBeGreaterThan(0);
      }
    }
    const system = report.scenarios.find((s) => s.id === 'system');
    expect(system?.cases.some((c) => c.name === 'smem')).toBe(true);
    expect(report.targets.length).toBeGreaterThanOrEqual(8);
    for (const t of report.targets) {
      expect(typeof t.name).toBe('string');
      expect(t.met === null || typeof t.met === 'boolean').toBe(true);
    }
    // Every scenario process it started is gone.
    const left = scenarioPids().filter((p) => !before.has(p));
    expect(left).toEqual([]);
  });
});

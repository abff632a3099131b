// Smoke run of the benchmark harness at tiny sizes: it starts, measures every
// scenario and case, kills its scenario processes and reports JSON of the
// documented shape. Benchmarks are not timed tests: no time is asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
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
  cpuMs: number | null;
  rssAddedMiB: number | null;
  peakRssMiB?: number;
  ratios: Record<string, number>;
  entriesPerSec?: number;
  gbPerSec?: number;
  timings?: Record<string, number>;
  stall?: { worstMs: number; calls: number; over1ms: number; over100us: number };
}

interface Report {
  machine: { nproc: number; ramGiB: number; kernel: string; kernelBuild: string; node: string };
  kernelSpeed: { scenario: string; pages: number; preadNsPerPage: number; smapsRollupNsPerPage: number } | null;
  scale: string;
  runs: number;
  scenarios: { id: string; state: 'running' | 'stopped'; title: string; cases: CaseResult[]; entries?: number }[];
  targets: { name: string; goal: string; value: number | null; met: boolean | null }[];
  sweep: {
    dense: { mib: number; processMemory?: number; skipped?: string }[];
    sharing: { procs: number; snapshot?: number; smapsRollup?: number; skipped?: string }[];
  };
  sweepSvgs: string[];
}

function scenarioPids(): number[] {
  const out = spawnSync('pgrep', ['-f', path.join(ROOT, 'benchmarks', '.bench-tmp', 'scenario')], { encoding: 'utf8' });
  return out.stdout.split('\n').filter(Boolean).map(Number);
}

describe('benchmark harness (tiny smoke run)', () => {
  it('runs every scenario and the sweep and reports JSON of the documented shape', { timeout: 150_000 }, () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'index.js')), 'dist/ is built (npm run build)').toBe(true);
    const before = new Set(scenarioPids());
    // The sweep's plots go to a scratch directory, not over docs/.
    const plots = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-bench-plots-'));
    try {
      const stdout = execFileSync(
        process.execPath,
        [
          path.join(ROOT, 'benchmarks', 'run.js'),
          '--scale',
          'tiny',
          '--json',
          '--runs',
          '1',
          '--warmup',
          '0',
          '--sweep',
          '--plots',
          plots,
        ],
        {
          cwd: ROOT,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          timeout: 140_000,
          maxBuffer: 16 << 20,
        },
      );
      const report = JSON.parse(stdout) as Report;
      expect(report.scale).toBe('tiny');
      expect(report.runs).toBe(1);
      expect(report.machine.nproc).toBeGreaterThan(0);
      expect(typeof report.machine.kernel).toBe('string');
      // `uname -rv`: the release and the build.
      expect(report.machine.kernelBuild.startsWith(`${report.machine.kernel} `)).toBe(true);
      expect(report.kernelSpeed?.preadNsPerPage).toBeGreaterThan(0);
      expect(report.kernelSpeed?.smapsRollupNsPerPage).toBeGreaterThan(0);
      // Every scenario running (its processes waking on their own) and stopped, over the same processes;
      // the stall scenario only running.
      const main = ['dense', 'sparse', 'maps', 'shared', 'system'];
      expect(report.scenarios.map((s) => `${s.id} ${s.state}`)).toEqual([
        ...main.map((id) => `${id} running`),
        ...main.map((id) => `${id} stopped`),
        'backends running',
        'backends stopped',
        'stall running',
      ]);
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
          // The CPU time of every measuring process or command (not of the idle and burner controls).
          if (c.kind !== 'idle' && c.kind !== 'burn') expect(c.cpuMs).toBeGreaterThanOrEqual(0);
          if (c.kind !== 'idle') expect(c.gbPerSec).toBeGreaterThan(0);
          // Whatever breakdown the library returns is numbers.
          for (const v of Object.values(c.timings ?? {})) expect(Number.isFinite(v)).toBe(true);
        }
      }
      const system = report.scenarios.find((s) => s.id === 'system');
      expect(system?.cases.find((c) => c.name === 'pagewalk snapshot()')?.cpuMs).toBeGreaterThan(0);
      expect(system?.cases.some((c) => c.name === 'smem')).toBe(true);
      // backends: smem and the pagewalk command, each with the peak RSS of its whole process.
      const backends = report.scenarios.find((s) => s.id === 'backends');
      const commands = backends?.cases.filter((c) => c.kind === 'exec') ?? [];
      expect(commands.map((c) => c.name)).toEqual(['smem', 'pagewalk smem (whole command)']);
      for (const c of commands) expect(c.peakRssMiB).toBeGreaterThan(1);
      expect(backends?.cases.some((c) => c.kind === 'snapshot')).toBe(true);
      // stall: the running process reported a latency window for each reader, idle and the CPU-burner control included.
      const stall = report.scenarios.find((s) => s.id === 'stall');
      const windows = stall?.cases.map((c) => ({ kind: c.kind, stall: c.stall })) ?? [];
      expect(windows.map(({ kind }) => kind)).toEqual([
        'idle',
        'burn',
        'processMemory',
        'processMemory',
        'snapshot',
        'pread',
        'smapsRollup',
      ]);
      for (const { stall: w } of windows) {
        expect(w?.calls).toBeGreaterThan(0);
        expect(w?.worstMs).toBeGreaterThan(0);
      }
      expect(report.targets.length).toBeGreaterThanOrEqual(12);
      for (const t of report.targets) {
        expect(typeof t.name).toBe('string');
        expect(t.met === null || typeof t.met === 'boolean').toBe(true);
      }
      // The sweep: every point measured, both plots drawn where asked.
      expect(report.sweep.sharing.map((r) => r.procs)).toEqual([1, 2, 4]);
      for (const r of report.sweep.sharing) expect(r.snapshot ?? r.skipped).toBeDefined();
      expect(report.sweepSvgs.map((f) => path.basename(f)).sort()).toEqual([
        'bench-dense.svg',
        'bench-sharing-ratio.svg',
        'bench-sharing.svg',
      ]);
      for (const f of report.sweepSvgs) expect(fs.readFileSync(path.resolve(ROOT, f), 'utf8')).toMatch(/^<svg /);
    } finally {
      fs.rmSync(plots, { recursive: true, force: true });
    }
    // Every scenario process it started is gone.
    const left = scenarioPids().filter((p) => !before.has(p));
    expect(left).toEqual([]);
  });
});

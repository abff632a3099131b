// excludeSelf: a process's figures as they will be once the observer (the
// calling process) has gone. A Node observer maps the whole node binary
// that a Node target maps, and libc that a C target maps; measured with
// excludeSelf, the targets' figures must equal their smaps_rollup read once
// the observer has exited, to the kB.
//
// PSS depends on every process that maps a page, and processes come and go
// on a shared machine, all mapping the system's libc and node. So the
// targets and the observer run from private copies of node, libc and the
// loader that no other process maps: only the observer's exit changes the
// targets' figures between its measurement and the kernel's.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessMemory, processMemory, snapshot } from '../lib/index';
import { buildDist, repoRoot } from './helpers/dist';
import { fixtureBin } from './helpers/fixture';
import { inKb, kernelKb, ROLLUP_KEYS } from './helpers/oracle';
import { killAllProcs, type Proc, startProc } from './helpers/procs';

const isRoot = process.getuid?.() === 0;
const LOADER = 'ld-linux-x86-64.so.2';

/** The shared libraries a binary loads, from ldd. */
function sharedLibraries(binary: string): string[] {
  return execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /=> (\/\S+)|^\s*(\/\S+)/.exec(l))
    .filter((m) => m !== null)
    .map((m) => (m[1] ?? m[2]) as string);
}

/** Environment without a sanitizer preload or Node options from the test runner. */
function plainEnv(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _p, NODE_OPTIONS: _o, ...rest } = process.env;
  return rest;
}

type Figures = Omit<ProcessMemory, 'pfnsVisible' | 'pages' | 'vss' | 'swapPss' | 'pssFixed'>;
interface TargetSeen {
  included: Figures;
  rollup: Record<string, number>;
  excluded: Figures;
}
interface SnapSeen {
  observer: string;
  processes: Figures[];
  group: { only: number; sharedOutside: number; distinct: number };
  matrix: { pids: number[]; bytes: number[] };
}
interface Seen {
  fatal?: string;
  targets: Record<string, TargetSeen>;
  snapshotExcluded: SnapSeen;
  snapshotIncluded: SnapSeen;
  withSelf: SnapSeen;
  groupWithSelf: { excluded: SnapSeen['group']; included: SnapSeen['group'] };
  selfRollup: Record<string, number>;
  selfAlone: Figures;
}

const kb = (r: Figures) => inKb(r as ProcessMemory);
/** The probe's rollup of the moment, in the names inKb() uses. */
function rollupOfMoment(k: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [, theirs] of ROLLUP_KEYS) out[theirs] = k[theirs] ?? 0;
  out.Private = (k.Private_Clean ?? 0) + (k.Private_Dirty ?? 0);
  return out;
}

describe.runIf(isRoot)('excludeSelf: figures once the observer has gone', () => {
  let dir: string;
  let runtime: string[];
  let nodeTarget: Proc;
  let cTarget: Proc;
  let seen: Seen;
  let after: Record<number, Record<string, number>>;

  beforeAll(async () => {
    buildDist();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-observer-'));
    const node = fs.realpathSync(process.execPath);
    const addon = path.join(repoRoot, 'build', 'Release', 'pagewalk.node');
    const libs = new Set([
      ...sharedLibraries(node),
      ...sharedLibraries(addon),
      ...sharedLibraries(fixtureBin('layouts')),
    ]);
    for (const lib of libs) fs.copyFileSync(lib, path.join(dir, path.basename(lib)));
    fs.copyFileSync(node, path.join(dir, 'node'));
    fs.chmodSync(path.join(dir, 'node'), 0o755);
    fs.chmodSync(path.join(dir, LOADER), 0o755);
    // The loader run as a program maps the libraries from `dir` only.
    runtime = [path.join(dir, LOADER), '--library-path', dir];
    const env = plainEnv();
    nodeTarget = await startProc(
      runtime[0],
      [...runtime.slice(1), path.join(dir, 'node'), '-e', 'console.log("ready"); setInterval(() => {}, 1 << 30);'],
      { env },
    );
    cTarget = await startProc(runtime[0], [...runtime.slice(1), fixtureBin('layouts'), 'anon', 'file', 'zero', 'thp'], {
      env,
    });
    for (const p of [nodeTarget, cTarget]) p.child.kill('SIGSTOP');
    const probe = spawnSync(
      runtime[0],
      [
        ...runtime.slice(1),
        path.join(dir, 'node'),
        path.join(__dirname, 'helpers', 'observer-probe.js'),
        repoRoot,
        String(nodeTarget.pid),
        String(cTarget.pid),
      ],
      { encoding: 'utf8', env, maxBuffer: 16 << 20 },
    );
    // spawnSync returns once the observer has exited and been reaped: its
    // address space is gone.
    seen = JSON.parse(probe.stdout.trim().split('\n').pop() || '{}') as Seen;
    if (probe.status !== 0 || seen.fatal) throw new Error(`observer probe failed: ${probe.stderr} ${seen.fatal}`);
    after = { [nodeTarget.pid]: kernelKb(nodeTarget.pid), [cTarget.pid]: kernelKb(cTarget.pid) };
  });

  afterAll(async () => {
    await killAllProcs();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the targets map only the private copies, so nobody else shares their libraries', () => {
    for (const p of [nodeTarget, cTarget]) {
      const files = fs
        .readFileSync(`/proc/${p.pid}/maps`, 'utf8')
        .split('\n')
        .map((l) => l.split(/\s+/).slice(5).join(' '))
        .filter((f) => f.endsWith('.so') || /\.so\./.test(f) || f.endsWith('/node'));
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect(f.startsWith(dir)).toBe(true);
    }
  });

  it('with excludeSelf each target equals its smaps_rollup read after the observer exited, to the kB', () => {
    for (const p of [nodeTarget, cTarget]) {
      const t = seen.targets[p.pid];
      expect(t.excluded).toMatchObject({ observer: 'excluded', source: 'pagemap', partial: false });
      expect(kb(t.excluded)).toEqual(after[p.pid]);
    }
  });

  it("without it each target is the kernel's view of the moment, observer included", () => {
    for (const p of [nodeTarget, cTarget]) {
      const t = seen.targets[p.pid];
      expect(t.included).toMatchObject({ observer: 'included', source: 'pagemap' });
      expect(kb(t.included)).toEqual(rollupOfMoment(t.rollup));
    }
  });

  it('the observer effect is real: the Node target loses megabytes of PSS to a Node observer, the C target some', () => {
    const n = seen.targets[nodeTarget.pid];
    const c = seen.targets[cTarget.pid];
    expect(n.excluded.pss - n.included.pss).toBeGreaterThan(4 << 20);
    expect(n.excluded.uss - n.included.uss).toBeGreaterThan(4 << 20);
    expect(c.excluded.pss - c.included.pss).toBeGreaterThan(64 << 10);
    // Only sharing moves, never residency.
    for (const t of [n, c]) expect(t.excluded.rss).toBe(t.included.rss);
  });

  it('snapshot() gives the same figures, and the group and matrix seen once the observer has gone', async () => {
    const ex = seen.snapshotExcluded;
    expect(ex.observer).toBe('excluded');
    for (const p of ex.processes) expect(p).toEqual(seen.targets[p.pid].excluded);
    // The test process shares nothing with the targets but the vdso, which
    // every process maps: its own view now is the observer-free one.
    const now = await snapshot({
      pids: [nodeTarget.pid, cTarget.pid],
      groups: [{ name: 'targets', match: [nodeTarget.pid, cTarget.pid] }],
      matrix: true,
    });
    const g = now.groups[0];
    expect(ex.group).toEqual({ only: g.only, sharedOutside: g.sharedOutside, distinct: g.distinct });
    expect(ex.matrix).toEqual({ pids: now.matrix?.pids, bytes: [...(now.matrix?.bytes ?? [])] });
    // With the observer counted, the copies it maps are shared outside the group.
    const inc = seen.snapshotIncluded;
    expect(inc.observer).toBe('included');
    expect(ex.group.only - inc.group.only).toBeGreaterThan(4 << 20);
    expect(inc.group.distinct).toBe(ex.group.distinct);
  });

  it("the caller's own report stays the kernel's view", () => {
    expect(seen.selfAlone.observer).toBe('included');
    const w = seen.withSelf;
    expect(w.observer).toBe('excluded');
    for (const p of w.processes) {
      if (p.pid in seen.targets) expect(p).toEqual(seen.targets[p.pid].excluded);
    }
    const self = w.processes.find((p) => !(p.pid in seen.targets)) as Figures;
    expect(self.observer).toBe('included');
    // Its pages shared with the Node target stay shared: discounted, tens
    // of MB of node's text would turn private.
    const rollupPrivate = (seen.selfRollup.Private_Clean + seen.selfRollup.Private_Dirty) * 1024;
    expect(Math.abs(self.uss - rollupPrivate)).toBeLessThan(4 << 20);
    expect(self.shared).toBeGreaterThan(8 << 20);
  });

  it('a group that holds the caller counts its mappings as the kernel does', () => {
    // Inside the group the caller is no outsider: leaving it out or not, the
    // same pages are shared with someone outside. Counted from its walk, not
    // from its pagemap read with the counts, it would turn node's text
    // (mapped by the Node target and the caller) shared outside.
    const { excluded, included } = seen.groupWithSelf;
    expect(excluded.sharedOutside).toBe(included.sharedOutside);
    expect(excluded.distinct - excluded.sharedOutside).toBeGreaterThan(8 << 20);
  });
});

describe('excludeSelf argument', () => {
  it('must be a boolean', async () => {
    await expect(processMemory(process.pid, { excludeSelf: 'yes' as unknown as boolean })).rejects.toThrow(TypeError);
    await expect(snapshot({ pids: [process.pid], excludeSelf: 1 as unknown as boolean })).rejects.toThrow(
      /excludeSelf must be a boolean/,
    );
  });
});

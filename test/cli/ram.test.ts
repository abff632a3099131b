// pagewalk ram: the census as a tree table, JSON and a sunburst SVG.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli';

const CATEGORIES = [
  'anon-unmapped',
  'free',
  'holes',
  'hugetlb',
  'kernel',
  'page-cache',
  'processes',
  'shmem',
  'unexplained',
];

interface Node {
  name: string;
  bytes: number;
  children?: Node[];
}

describe('pagewalk ram', () => {
  it('prints the census as JSON: categories summing to the total, processes split by group', () => {
    const r = run(['ram', '--json', '--group-by', 'user']);
    expect(r.code, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout) as { total: number; tree: Node; units: string; cgroups: unknown[] };
    expect(c.units).toBe('bytes');
    expect(c.tree.children?.map((n) => n.name).sort()).toEqual(CATEGORIES);
    expect(c.tree.children?.reduce((s, n) => s + n.bytes, 0)).toBe(c.total);
    const processes = c.tree.children?.find((n) => n.name === 'processes');
    // Grouped by user: root holds memory of its own here (this very test runs as root).
    expect(processes?.children?.some((n) => n.name === 'root (alone)')).toBe(true);
    expect(processes?.children?.reduce((s, n) => s + n.bytes, 0)).toBe(processes?.bytes);
    expect(c.cgroups.length).toBeGreaterThan(0);
  });

  it('prints a tree table to the depth asked, largest first, with the reconciliation', () => {
    const r = run(['ram', '-k', '--depth', '1', '--no-processes']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0].trim().split(/\s+/)).toEqual(['Size', '%', 'Where']);
    const rows = lines.slice(1, 1 + CATEGORIES.length);
    // Depth 1: the categories alone, none indented.
    expect(rows.map((l) => l.trim().split(/\s+/)[2]).sort()).toEqual(CATEGORIES);
    for (const l of rows) expect(l).not.toMatch(/%\s{3,}\S/);
    expect(r.stdout).toMatch(/^total .* = MemTotal .* \+ reserved at boot .* \+ holes .*$/m);
    expect(r.stdout).toMatch(/^unexplained .* of MemTotal\)$/m);
    const deeper = run(['ram', '--depth', '2', '--no-processes', '--cgroups']);
    expect(deeper.code, deeper.stderr).toBe(0);
    expect(deeper.stdout).toMatch(/^\s*\d+\s+[\d.]+%\s{3}buddy allocator$/m);
    expect(deeper.stdout).toMatch(/Cgroup \(memory\.stat difference\)/);
  });

  it('writes a sunburst SVG', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-ram-'));
    try {
      const svg = path.join(dir, 'ram.svg');
      const r = run(['ram', '--no-processes', '-o', svg]);
      expect(r.code, r.stderr).toBe(0);
      const text = fs.readFileSync(svg, 'utf8');
      expect(text).toMatch(/^<\?xml/);
      for (const c of ['free', 'kernel', 'page-cache']) expect(text).toContain(`>${c} `);
      expect((text.match(/<path /g) ?? []).length).toBeGreaterThan(CATEGORIES.length - 3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says that it needs root when the frame files are refused', (ctx) => {
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      console.log('skipped: no setpriv to run as nobody');
      ctx.skip();
    }
    const r = run(['ram'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'pagewalk: permission denied reading /proc/kpageflags: the census of every page frame needs CAP_SYS_ADMIN (run as root)\n',
    );
  });

  it('refuses a bad depth or grouping with a usage error', () => {
    expect(run(['ram', '--depth', '0']).code).toBe(2);
    const r = run(['ram', '--group-by', 'colour']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/invalid --group-by "colour"/);
  });
});

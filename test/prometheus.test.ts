// pagewalk serve scraped by a real Prometheus (Debian's prometheus package,
// installed by scripts/setup-machine.sh), on loopback, every second: the
// figures Prometheus stores for a stopped fixture family are the kernel's.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from './helpers/cli';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from './helpers/fixture';
import { groupTruth } from './helpers/group-oracle';
import { rollup } from './helpers/oracle';
import { type RunningPrometheus, scrapeConfig, startPrometheus } from './helpers/prometheus';
import { type Served, startServe, stopAllServes } from './helpers/serve';

// A copy of the fixture under a name no other process has: the family is
// the only match of the config, and its program's pages are its own. The
// statically linked build maps no shared library, whose PSS would move with
// every process that starts or exits on a busy machine.
const NAME = `pwprom${process.pid % 100_000}`;
const GROUP = `family ${NAME}`;

let tmp: string;
let family: Fixture;
let served: Served;
let prometheus: RunningPrometheus | undefined;
let api: string;

const query = (promql: string) => (prometheus as RunningPrometheus).query(promql);

interface Sample {
  /** Seconds since the epoch: when Prometheus scraped it. */
  at: number;
  value: number;
}

/** The newest sample Prometheus holds for the family group's metric, once one was scraped after `after`. */
async function newestAfter(metric: string, after: number): Promise<Sample> {
  for (let i = 0; i < 100; i++) {
    const [series] = await query(`${metric}{group="${GROUP}"}[10s]`);
    const last = series?.values?.at(-1);
    if (last && last[0] > after) return { at: last[0], value: Number(last[1]) };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no sample of ${metric} after ${after}`);
}

beforeAll(async () => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-prometheus-'));
  const bin = path.join(tmp, NAME);
  fs.copyFileSync(fixtureBin('layouts-static'), bin);
  fs.chmodSync(bin, 0o755);
  family = await startFixture(['anon', 'file', 'zero', 'shared', 'cow'], {}, { bin });
  family.stop();
  const config = path.join(tmp, 'groups.yaml');
  fs.writeFileSync(config, `groups:\n  - name: "family {{name}}"\n    match:\n      name: ^${NAME}$\n`);
  served = await startServe(['--config', config, '--min-interval', '0']);
  prometheus = await startPrometheus(tmp, scrapeConfig({ pagewalk: `127.0.0.1:${served.port}` }));
  api = prometheus.api;
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await stopAllServes();
  await killAllFixtures();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('a real Prometheus scraping pagewalk serve', () => {
  it('reports the target up', async () => {
    let health = '';
    for (let i = 0; i < 200 && health !== 'up'; i++) {
      const r = (await (await fetch(`${api}/api/v1/targets`)).json()) as {
        data: { activeTargets: { health: string; lastError: string }[] };
      };
      health = r.data.activeTargets[0]?.health ?? '';
      if (health !== 'up') await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(health).toBe('up');
  });

  it('stores the family PSS equal to smaps_rollup (to the kB per process) and its unique memory equal to the oracle', async () => {
    // PSS moves when any process on the machine maps or unmaps a library the
    // family maps: a comparison counts only when smaps_rollup read the same
    // before and after the scrape it is compared with.
    const n = family.pids.length;
    let compared = false;
    for (let attempt = 0; attempt < 30 && !compared; attempt++) {
      const before = family.pids.map((p) => rollup(p).Pss);
      const pss = await newestAfter('pagewalk_group_pss_bytes', Date.now() / 1000);
      const after = family.pids.map((p) => rollup(p).Pss);
      if (before.join() !== after.join()) continue;
      const kb = after.reduce((a, b) => a + b, 0);
      // The kernel truncates each process' PSS to the kB; pagewalk adds bytes.
      expect(pss.value).toBeGreaterThanOrEqual(kb * 1024);
      expect(pss.value).toBeLessThan((kb + n) * 1024);
      compared = true;
    }
    expect(compared, 'smaps_rollup never held still around a scrape').toBe(true);

    const unique = await newestAfter('pagewalk_group_unique_bytes', Date.now() / 1000);
    const truth = groupTruth(family.pids);
    expect(unique.value).toBe(truth.onlyPages * 4096);
    // The known shape: anonymous, shared, copy-on-write and the children's copies, at least.
    expect(unique.value).toBeGreaterThanOrEqual((64 + 32 + 32 + 16) * 4096);
    const [processes] = await query(`pagewalk_group_processes{group="${GROUP}"}`);
    expect(processes.metric.job).toBe('pagewalk');
    const [exact] = await query('pagewalk_exact');
    expect(exact).toBeDefined();
  });

  it('can rank groups and tell what stopping one frees, in PromQL', async () => {
    const top = await query('topk(10, pagewalk_group_pss_bytes)');
    expect(top.map((s) => s.metric.group)).toEqual([GROUP]);
    const freed = await query(`sum(pagewalk_group_unique_bytes{group="${GROUP}"})`);
    expect(freed).toHaveLength(1);
  });
});

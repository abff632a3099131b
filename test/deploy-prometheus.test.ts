// deploy/prometheus and deploy/grafana against the real tools: promtool
// checks the rules and runs their unit tests (which must fail when a rule
// is changed), and a real Prometheus scrapes `pagewalk serve --group-by pod`
// (a pod made by hand, see helpers/pods.ts) and node_exporter, evaluates the
// rules, and answers every query of every dashboard panel, Grafana's
// variables replaced by their defaults, with series.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CgroupTree, cgroupHierarchyMissing, createCgroupTree } from './helpers/cgroup';
import { root } from './helpers/cli';
import { killAllFixtures } from './helpers/fixture';
import { makeKubeLogs, type RunningPod, setMemoryLimit, startPod, WEB_POD } from './helpers/pods';
import { type RunningPrometheus, scrapeConfig, startPrometheus } from './helpers/prometheus';
import { freePort, type Served, startServe, stopAllServes } from './helpers/serve';

const RULES = path.join(root, 'deploy', 'prometheus', 'pagewalk-rules.yml');
const RULE_TESTS = path.join(root, 'deploy', 'prometheus', 'pagewalk-rules.test.yml');
const DASHBOARD = path.join(root, 'deploy', 'grafana', 'pagewalk.json');

function promtool(args: string[], cwd = path.dirname(RULES)): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('deploy/prometheus/pagewalk-rules.yml with promtool', () => {
  it('passes `promtool check rules`', () => {
    const r = promtool(['check', 'rules', RULES]);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.code).toBe(0);
  });

  it('passes its unit tests (`promtool test rules`), which cover every alert', () => {
    const r = promtool(['test', 'rules', RULE_TESTS]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code).toBe(0);
    const tests = fs.readFileSync(RULE_TESTS, 'utf8');
    for (const [, alert] of fs.readFileSync(RULES, 'utf8').matchAll(/- alert: (\w+)/g))
      expect(tests, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  });

  it.each([
    ['a lower growth threshold (the 40% pod would fire)', '> 1.5', '> 1.3'],
    ['no floor on the growth (the 20 MiB pod would fire)', '> 64 * 2^20', '> 0'],
    [
      'a lower limit threshold (the half-full pod would fire)',
      'memory_limit_bytes:max > 0.9',
      'memory_limit_bytes:max > 0.4',
    ],
    [
      'a wrong interval (the 5 s snapshots would fire)',
      '(600 / count_over_time(up[10m]))',
      '(60 / count_over_time(up[10m]))',
    ],
    ['no hold (alerts would fire at once)', 'for: 15m', 'for: 0m'],
  ])('fail their unit tests with %s', (_, from, to) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-rules-'));
    try {
      const rules = fs.readFileSync(RULES, 'utf8');
      expect(rules).toContain(from);
      fs.writeFileSync(path.join(dir, 'pagewalk-rules.yml'), rules.replace(from, to));
      fs.copyFileSync(RULE_TESTS, path.join(dir, 'pagewalk-rules.test.yml'));
      const r = promtool(['test', 'rules', 'pagewalk-rules.test.yml'], dir);
      expect(r.code).not.toBe(0);
      expect(r.out).toContain('FAILED');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- The dashboard against a real Prometheus ----

interface Target {
  refId: string;
  expr: string;
}
interface Panel {
  id: number;
  title: string;
  type: string;
  targets?: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Variable {
  name: string;
  type: string;
  allValue?: string;
  current?: { value: string | string[] };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  time: { from: string; to: string };
  templating: { list: Variable[] };
}

const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const SCRAPE_SECONDS = 1;

/**
 * Grafana's values for a query with the dashboard as saved: each variable at
 * its default (All: its allValue), and the built-in intervals as Grafana
 * computes them for the dashboard's time range on a 1000-pixel panel with
 * the data source's scrape interval.
 */
function defaults(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of dashboard.templating.list) {
    const value = v.current?.value;
    const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
    if (values.includes('$__all')) {
      expect(v.allValue, `${v.name}: All needs an allValue`).toBeDefined();
      out[v.name] = v.allValue as string;
    } else if (values.length === 1) out[v.name] = values[0];
    else out[v.name] = `(${values.join('|')})`;
  }
  const m = /^now-(\d+)h$/.exec(dashboard.time.from);
  expect(m, 'the time range is now-Nh').not.toBeNull();
  const rangeSeconds = Number(m?.[1]) * 3600;
  // $__interval: the range over the panel's width, never below the scrape interval.
  const interval = Math.max(SCRAPE_SECONDS, Math.round(rangeSeconds / 1000));
  out.__interval = `${interval}s`;
  out.__interval_ms = String(interval * 1000);
  out.__rate_interval = `${Math.max(interval + SCRAPE_SECONDS, 4 * SCRAPE_SECONDS)}s`;
  out.__range = `${rangeSeconds}s`;
  out.__range_s = String(rangeSeconds);
  out.__range_ms = String(rangeSeconds * 1000);
  return out;
}

/** Replaces `$var`, `${var}`, `${var:format}` and `[[var]]`; an unknown variable is an error. */
function expand(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (_, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string;
    if (!(name in values)) throw new Error(`unknown variable $${name} in ${expr}`);
    return values[name];
  });
}

let tmp: string;
let tree: CgroupTree | undefined;
let pod: RunningPod;
let limited = false;
let served: Served;
let prometheus: RunningPrometheus | undefined;
let nodeExporter: ReturnType<typeof spawn> | undefined;

beforeAll(async () => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-dashboard-'));
  const logs = makeKubeLogs(path.join(tmp, 'log'));
  // The v1 memory hierarchy where there is one (a limit can be set there on a hybrid host), else the v2 one.
  const version = cgroupHierarchyMissing(1) === undefined ? 1 : 2;
  tree = createCgroupTree(version, `pagewalk-dashboard-${process.pid}`);
  pod = await startPod(tree, WEB_POD, logs);
  // A limit, so that the panel of unique memory against it has a pod to show.
  limited = setMemoryLimit(version, pod.dir.dir, 2 ** 30);
  if (!limited) console.log(`cgroup v${version} here takes no memory limit: the limit panel cannot be checked`);
  // Snapshots of the whole machine, reused for 10 s (the default): a scrape that finds one fresh answers
  // at once, within its 1 s timeout, even when the snapshot took seconds on a busy machine.
  served = await startServe(['--group-by', 'pod', '--kube-logs', logs, '--min-interval', '10']);
  const nodePort = await freePort();
  nodeExporter = spawn(
    'prometheus-node-exporter',
    [`--web.listen-address=127.0.0.1:${nodePort}`, '--collector.disable-defaults', '--collector.meminfo'],
    { stdio: 'ignore' },
  );
  prometheus = await startPrometheus(
    tmp,
    scrapeConfig({ pagewalk: `127.0.0.1:${served.port}`, node: `127.0.0.1:${nodePort}` }, `${SCRAPE_SECONDS}s`, [
      RULES,
    ]),
  );
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  if (nodeExporter && nodeExporter.exitCode === null) {
    const exited = new Promise((r) => nodeExporter?.once('exit', r));
    nodeExporter.kill('SIGTERM');
    await exited;
  }
  await stopAllServes();
  await killAllFixtures();
  await tree?.remove();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Asks until the query returns series (Prometheus needs a few scrapes for rates and deltas), at most 40 s. */
async function seriesOf(promql: string): Promise<Record<string, string>[]> {
  for (let i = 0; ; i++) {
    const result = await (prometheus as RunningPrometheus).query(promql);
    if (result.length > 0 || i === 80) return result.map((r) => r.metric);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('deploy/grafana/pagewalk.json against a real Prometheus scraping pagewalk serve and node_exporter', () => {
  it('is a dashboard: unique panel ids, every panel placed and querying', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.gridPos.w, p.title).toBeGreaterThan(0);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toContain('datasource');
  });

  it('has both targets up, and the rules evaluating without error', async () => {
    for (const job of ['pagewalk', 'node']) expect(await seriesOf(`up{job="${job}"} == 1`), job).toHaveLength(1);
    const pods = await seriesOf(`namespace_pod:pagewalk_unique_bytes:sum{pod="${pod.pod}"}`);
    expect(pods).toEqual([{ __name__: 'namespace_pod:pagewalk_unique_bytes:sum', namespace: 'shop', pod: pod.pod }]);
    const r = (await (await fetch(`${prometheus?.api}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = r.data.groups.flatMap((g) => g.rules);
    expect(rules.length).toBeGreaterThan(5);
    for (const rule of rules)
      expect({ rule: rule.name, health: rule.health, error: rule.lastError ?? '' }).toEqual({
        rule: rule.name,
        health: 'ok',
        error: '',
      });
  }, 60_000);

  it.each(
    dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ref: t.refId, expr: t.expr }))),
  )(
    'panel "$panel" query $ref returns series',
    async ({ expr }) => {
      if (expr.includes('pagewalk_group_memory_limit_bytes') && !limited) return;
      const series = await seriesOf(expand(expr, defaults()));
      expect(series.length, expand(expr, defaults())).toBeGreaterThan(0);
    },
    60_000,
  );

  it('shows the pod by name in the pod panels', async () => {
    const top = dashboard.panels.find((p) => p.title.startsWith('Top pods by unique')) as Panel;
    const series = await seriesOf(expand((top.targets as Target[])[0].expr, defaults()));
    expect(series).toContainEqual({ namespace: 'shop', pod: pod.pod });
  });
});

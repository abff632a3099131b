// Pods without Kubernetes: every cgroup form the kubelet and the runtimes
// make, built by hand in the v1 memory hierarchy and in the v2 one, fixture
// processes moved into them, and a kubelet log tree written under a
// temporary --kube-logs root. `pagewalk serve --group-by pod` and
// `--group-by container` must give each pod (and container) its PSS equal
// to the sum of its processes' smaps_rollup, and its unique memory equal to
// the group oracle; snapshot(), smem and group must name them the same way.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMemoryCgroup, snapshot } from '../lib/index';
import { type CgroupTree, cgroupHierarchyMissing, createCgroupTree } from './helpers/cgroup';
import { ok, root, run } from './helpers/cli';
import { killAllFixtures } from './helpers/fixture';
import { groupTruth } from './helpers/group-oracle';
import { rollup } from './helpers/oracle';
import {
  makeKubeLogs,
  type PodSpec,
  type RunningPod,
  SYSTEMD_BURSTABLE_CONTAINERD,
  setMemoryLimit,
  startPod,
  underscored,
  WEB_POD,
} from './helpers/pods';
import { type Served, startServe, stopAllServes } from './helpers/serve';

const PODS: PodSpec[] = [
  { ...WEB_POD, containers: [...WEB_POD.containers, { name: 'pause', regions: ['anon'], unnamed: true }] },
  {
    form: 'systemd besteffort, CRI-O',
    namespace: 'shop',
    pod: 'cache-7f9c',
    podDir: (u) => `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${underscored(u)}.slice`,
    containerDir: (u, id) =>
      `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${underscored(u)}.slice/crio-${id}.scope`,
    containers: [{ name: 'redis', regions: ['anon', 'file'] }],
  },
  {
    form: 'systemd guaranteed, Docker',
    namespace: 'data',
    pod: 'db-0',
    podDir: (u) => `kubepods.slice/kubepods-pod${underscored(u)}.slice`,
    containerDir: (u, id) => `kubepods.slice/kubepods-pod${underscored(u)}.slice/docker-${id}.scope`,
    containers: [{ name: 'postgres', regions: ['anon', 'shared'] }],
  },
  {
    form: 'the colon form',
    namespace: 'kube-system',
    pod: 'kube-proxy-x7k2p',
    podDir: (u) => `system.slice/containerd.service/kubepods-besteffort-pod${underscored(u)}.slice`,
    containerDir: (u, id) =>
      `system.slice/containerd.service/kubepods-besteffort-pod${underscored(u)}.slice:cri-containerd:${id}`,
    containers: [{ name: 'kube-proxy', regions: ['anon'] }],
  },
  {
    form: 'cgroupfs burstable',
    namespace: 'jobs',
    pod: 'batch-1',
    podDir: (u) => `kubepods/burstable/pod${u}`,
    containerDir: (u, id) => `kubepods/burstable/pod${u}/${id}`,
    containers: [{ name: 'worker', regions: ['anon', 'cow'] }],
  },
  {
    form: 'cgroupfs guaranteed, static pod',
    namespace: 'kube-system',
    pod: 'etcd-node1',
    staticPod: true,
    podDir: (u) => `kubepods/pod${u}`,
    containerDir: (u, id) => `kubepods/pod${u}/${id}`,
    containers: [{ name: 'etcd', regions: ['anon'] }],
  },
  {
    form: 'systemd burstable, a pod the logs do not name',
    namespace: 'ghost',
    pod: 'ghost',
    unknown: true,
    ...SYSTEMD_BURSTABLE_CONTAINERD,
    containers: [{ name: 'ghost', regions: ['anon'], unnamed: true }],
  },
];

const POD_LIMIT = 3 * 2 ** 30;
const CONTAINER_LIMIT = 2 * 2 ** 30;

let tmp: string;
let logs: string;
const trees: CgroupTree[] = [];
// Each form is built in every hierarchy this host has: the v1 memory one and the v2 one (both, on this hybrid host).
const VERSIONS = ([1, 2] as const).filter((version) => {
  const why = cgroupHierarchyMissing(version);
  if (why) console.log(`cgroup v${version}: ${why}; its pods are not built here`);
  return !why;
});
const pods: RunningPod[] = [];

const limitsSet = new Map<string, number>();

beforeAll(async () => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-kube-'));
  logs = makeKubeLogs(path.join(tmp, 'log'));
  expect(VERSIONS.length, 'no cgroup hierarchy to build pods in').toBeGreaterThan(0);
  for (const version of VERSIONS) {
    const tree = createCgroupTree(version, `pagewalk-kube-${process.pid}`);
    trees.push(tree);
    for (const spec of PODS) pods.push(await startPod(tree, spec, logs, `-v${version}`));
  }
  // Limits on the first pod of each hierarchy, where the memory controller is there to hold them.
  for (const p of pods.filter((x) => x.spec === PODS[0])) {
    if (setMemoryLimit(p.version, p.dir.dir, POD_LIMIT)) limitsSet.set(`${p.version} pod`, POD_LIMIT);
    if (setMemoryLimit(p.version, p.containers[0].cgroup.dir, CONTAINER_LIMIT))
      limitsSet.set(`${p.version} container`, CONTAINER_LIMIT);
  }
  for (const p of pods) for (const c of p.containers) c.fixture.stop();
}, 120_000);

afterAll(async () => {
  await stopAllServes();
  await killAllFixtures();
  // Deepest first, every directory made, whatever failed before.
  for (const t of trees) await t.remove();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** The labels and value of each sample of one metric in an exposition. */
function series(text: string, metric: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(metric.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

async function scrape(served: Served): Promise<string> {
  const r = await fetch(`${served.base}/metrics`);
  expect(r.status).toBe(200);
  return r.text();
}

/**
 * Compares, for each group of pids, the exported PSS with the sum of the
 * kernel's smaps_rollup and the exported unique memory with the oracle. The
 * fixtures are statically linked and stopped, so no other process moves
 * their figures; but this host pages out idle memory (DAMON), which does: a
 * comparison counts only when the kernel's side read the same before and
 * after the scrape.
 */
async function expectExact(
  served: Served,
  groups: { name: string; labels: Record<string, string>; pids: number[] }[],
): Promise<string> {
  const pending = new Set(groups.map((g) => g.name));
  let text = '';
  for (let attempt = 0; attempt < 10 && pending.size > 0; attempt++) {
    const before = groups.map((g) => ({ pss: g.pids.map((p) => rollup(p).Pss), only: groupTruth(g.pids).onlyPages }));
    text = await scrape(served);
    const pss = series(text, 'pagewalk_group_pss_bytes');
    const unique = series(text, 'pagewalk_group_unique_bytes');
    groups.forEach((g, i) => {
      if (!pending.has(g.name)) return;
      const mine = (s: { labels: Record<string, string> }) => s.labels.group === g.name;
      const p = pss.filter(mine);
      expect(p, g.name).toHaveLength(1);
      expect(p[0].labels, g.name).toEqual({ group: g.name, ...g.labels });
      const after = { pss: g.pids.map((p) => rollup(p).Pss), only: groupTruth(g.pids).onlyPages };
      if (after.pss.join() !== before[i].pss.join() || after.only !== before[i].only) return;
      const kb = after.pss.reduce((a, b) => a + b, 0);
      // The kernel truncates each process' PSS to the kB; pagewalk adds bytes.
      expect(p[0].value, g.name).toBeGreaterThanOrEqual(kb * 1024);
      expect(p[0].value, g.name).toBeLessThan((kb + g.pids.length) * 1024);
      expect(unique.find(mine)?.value, g.name).toBe(after.only * 4096);
      pending.delete(g.name);
    });
  }
  expect([...pending], 'groups whose kernel figures never held still around a scrape').toEqual([]);
  return text;
}

describe('pagewalk serve --group-by pod / container on hand-made pods (cgroup v1 and v2)', () => {
  it('gives each pod its exact PSS and unique memory, labelled namespace and pod; an unnamed pod keeps its cgroup group', async () => {
    const served = await startServe(['--group-by', 'pod', '--kube-logs', logs, '--min-interval', '0']);
    const known = pods.filter((p) => !p.spec.unknown);
    const text = await expectExact(
      served,
      known.map((p) => ({
        name: `${p.spec.namespace}/${p.pod}`,
        labels: { namespace: p.spec.namespace, pod: p.pod },
        pids: p.pids,
      })),
    );
    // Every pod of every form, in both hierarchies, is there.
    expect(known).toHaveLength(VERSIONS.length * (PODS.length - 1));
    // The pod the logs do not name: its container's cgroup group, without Kubernetes labels.
    const processes = series(text, 'pagewalk_group_processes');
    // (On a hybrid host the memory cgroup of the v2 one is still the v1 cgroup it started in.)
    for (const ghost of pods.filter((p) => p.spec.unknown)) {
      const c = ghost.containers[0];
      const name = readMemoryCgroup(c.fixture.pid)?.name as string;
      const group = processes.find((s) => s.labels.group === name);
      expect(group?.labels).toEqual({ group: name });
      if (readMemoryCgroup(c.fixture.pid)?.path === c.cgroup.path) {
        expect(name).toBe(c.id.slice(0, 12));
        expect(group?.value).toBe(1);
      }
    }
    // The limits of the pods' cgroups, where the hierarchy holds them.
    const limits = series(text, 'pagewalk_group_memory_limit_bytes');
    for (const version of VERSIONS) {
      const p = pods.find((x) => x.version === version && x.spec === PODS[0]) as RunningPod;
      const limit = limits.find((s) => s.labels.pod === p.pod);
      if (!limitsSet.has(`${version} pod`)) {
        console.log(`cgroup v${version} here has no memory controller: no pod limit to export`);
        expect(limit).toBeUndefined();
        continue;
      }
      expect(limit?.value).toBe(POD_LIMIT);
    }
    expect(limitsSet.size, 'no hierarchy here could hold a limit').toBeGreaterThan(0);
    // Pods without a limit have no limit series.
    const unlimited = pods.find((x) => x.spec === PODS[1]) as RunningPod;
    expect(limits.find((s) => s.labels.pod === unlimited.pod)).toBeUndefined();
    await served.stop();
  });

  it('gives each container its exact figures, labelled namespace, pod and container; the sandbox is the pod with an empty container', async () => {
    const served = await startServe(['--group-by', 'container', '--kube-logs', logs, '--min-interval', '0']);
    const groups = pods
      .filter((p) => !p.spec.unknown)
      .flatMap((p) => {
        const named = p.containers.filter((c) => !c.spec.unnamed);
        const unnamed = p.containers.filter((c) => c.spec.unnamed);
        return [
          ...named.map((c) => ({
            name: `${p.spec.namespace}/${p.pod}/${c.spec.name}`,
            labels: { namespace: p.spec.namespace, pod: p.pod, container: c.spec.name },
            pids: c.fixture.pids,
          })),
          ...(unnamed.length
            ? [
                {
                  name: `${p.spec.namespace}/${p.pod}`,
                  labels: { namespace: p.spec.namespace, pod: p.pod, container: '' },
                  pids: unnamed.flatMap((c) => c.fixture.pids),
                },
              ]
            : []),
        ];
      });
    const text = await expectExact(served, groups);
    const limits = series(text, 'pagewalk_group_memory_limit_bytes');
    for (const version of VERSIONS) {
      if (!limitsSet.has(`${version} container`)) continue;
      const p = pods.find((x) => x.version === version && x.spec === PODS[0]) as RunningPod;
      expect(limits.find((s) => s.labels.pod === p.pod && s.labels.container === 'nginx')?.value).toBe(CONTAINER_LIMIT);
    }
    await served.stop();
  });
});

describe('pagewalk serve --group-by namespace', () => {
  it('gives each namespace its processes, labelled namespace', async () => {
    const served = await startServe(['--group-by', 'namespace', '--kube-logs', logs, '--min-interval', '0']);
    const processes = series(await scrape(served), 'pagewalk_group_processes');
    for (const ns of new Set(pods.filter((p) => !p.spec.unknown).map((p) => p.spec.namespace))) {
      const n = pods.filter((p) => !p.spec.unknown && p.spec.namespace === ns).flatMap((p) => p.pids).length;
      expect(processes.find((s) => s.labels.group === ns)).toEqual({ labels: { group: ns, namespace: ns }, value: n });
    }
    await served.stop();
  });
});

describe('the same names in snapshot(), smem, group and top', () => {
  it('snapshot({ groupBy: "namespace" }) and { groupBy: "container" } carry the names as labels', async () => {
    const pids = pods.flatMap((p) => p.pids);
    const byNamespace = await snapshot({ pids, groupBy: 'namespace', kubeLogs: logs });
    const shop = byNamespace.groups.find((g) => g.name === 'shop');
    expect(shop?.labels).toEqual({ namespace: 'shop' });
    expect(shop?.pids.sort()).toEqual(
      pods
        .filter((p) => p.spec.namespace === 'shop')
        .flatMap((p) => p.pids)
        .sort(),
    );
    const byContainer = await snapshot({ pids, groupBy: 'container', kubeLogs: logs });
    const v2 = pods.find((p) => p.version === VERSIONS.at(-1) && p.spec === PODS[3]) as RunningPod;
    expect(byContainer.groups.find((g) => g.name === `kube-system/${v2.pod}/kube-proxy`)).toMatchObject({
      labels: { namespace: 'kube-system', pod: v2.pod, container: 'kube-proxy' },
      pids: v2.pids,
    });
    // Without the log tree nothing is named: every process keeps its cgroup group.
    const nameless = await snapshot({ pids, groupBy: 'pod', kubeLogs: path.join(tmp, 'none') });
    expect(nameless.groups.every((g) => g.labels === undefined)).toBe(true);
  });

  it('smem --group-by pod and group --by pod give the pods by name', () => {
    const pids = new Set(pods.flatMap((p) => p.pids));
    const smem = JSON.parse(ok(['smem', '--group-by', 'pod', '--kube-logs', logs, '--json'])) as {
      groups: { pod: string; namespace: string; count: number; pss: number; unique?: number }[];
    };
    const group = JSON.parse(ok(['group', '--by', 'pod', '--kube-logs', logs, '--json'])) as {
      groups: { group: string; labels?: Record<string, string>; pids: number[] }[];
    };
    for (const p of pods.filter((x) => !x.spec.unknown)) {
      const name = `${p.spec.namespace}/${p.pod}`;
      const row = smem.groups.find((r) => r.pod === name);
      expect(row, name).toMatchObject({ namespace: p.spec.namespace, count: p.pids.length });
      const g = group.groups.find((r) => r.group === name);
      expect(g?.labels).toEqual({ namespace: p.spec.namespace, pod: p.pod });
      expect(g?.pids.filter((pid) => pids.has(pid)).sort()).toEqual([...p.pids].sort());
    }
    // Rules match and name by the Kubernetes names too: every pod whose name starts
    // with web, as one group per namespace; processes in no named pod match no rule.
    const rules = path.join(tmp, 'rules.yaml');
    fs.writeFileSync(rules, 'groups:\n  - name: "{{namespace}} {{match}}"\n    match:\n      pod: ^(web)-\n');
    const byRule = JSON.parse(ok(['group', '--config', rules, '--kube-logs', logs, '--json'])) as {
      groups: { group: string; pids: number[] }[];
    };
    expect(byRule.groups.map((g) => [g.group, [...g.pids].sort()])).toEqual([
      [
        'shop web',
        pods
          .filter((p) => p.spec === PODS[0])
          .flatMap((p) => p.pids)
          .sort(),
      ],
    ]);
    // A root without the kubelet's directories (a typo, a missing mount) is said, not silent.
    const none = path.join(tmp, 'none');
    const r = run(['group', '--by', 'pod', '--kube-logs', none, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `pagewalk: warning: no kubelet log directories (pods/, containers/) under ${none}: no pod is named (--kube-logs)\n`,
    );
  });

  it('top, record and diff group by container', () => {
    const v1 = pods.find((p) => p.version === VERSIONS[0] && p.spec === PODS[0]) as RunningPod;
    const top = ok(['top', '-b', '-n', '1', '--by', 'container', '--kube-logs', logs]);
    expect(top).toContain(`shop/${v1.pod}/nginx`);
    const file = path.join(tmp, 'record.jsonl');
    ok(['record', '-n', '2', '-d', '0.2', '--by', 'container', '--kube-logs', logs, '-o', file]);
    const sample = JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]) as {
      groupBy: string;
      groups: { key: string }[];
    };
    expect(sample.groupBy).toBe('container');
    expect(sample.groups.map((g) => g.key)).toContain(`shop/${v1.pod}/sidecar`);
    const diff = JSON.parse(ok(['diff', file, '--by', 'container', '--all', '--json'])) as {
      by: string;
      groups: { key: string }[];
    };
    expect(diff.by).toBe('container');
    expect(diff.groups.map((g) => g.key)).toContain(`shop/${v1.pod}/nginx`);
  });
});

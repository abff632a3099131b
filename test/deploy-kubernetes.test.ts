// deploy/kubernetes: each object validated against the Kubernetes schemas
// (kubernetes-models: its validators, and its types through the TypeScript
// compiler, which rejects fields the schema does not know), held to least
// privilege, its parts referring to each other rightly, the DaemonSet's
// arguments run by the real `pagewalk serve`, and its capabilities shown
// necessary by experiment: the probe below runs as uid 0 with exactly
// those capabilities (setpriv), then with each one taken away.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type IServiceMonitor,
  ServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { DaemonSet, type IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { type IService, Service } from 'kubernetes-models/v1/Service';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { root } from './helpers/cli';
import { type Fixture, fixtureBin, killAllFixtures, startFixture } from './helpers/fixture';
import { startServe, stopAllServes } from './helpers/serve';

const DIR = path.join(root, 'deploy', 'kubernetes');

function load(file: string): Record<string, unknown>[] {
  return parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as Record<string, unknown>;
  });
}

const [daemonSet] = load('daemonset.yaml') as unknown as IDaemonSet[];
const [service] = load('service.yaml') as unknown as IService[];
const [serviceMonitor] = load('servicemonitor.yaml') as unknown as IServiceMonitor[];
const pod = daemonSet.spec?.template.spec;
const container = pod?.containers[0];

/**
 * Type-checks each object as the kubernetes-models type of its kind, as an
 * object literal: the compiler rejects a field the type does not have
 * (hostPIDD, a misspelt readOnly), which the validators let through.
 */
function typeErrors(objects: { type: string; from: string; value: unknown }[]): string[] {
  const file = path.join(root, 'test', '.deploy-types.ts');
  const text = [
    ...objects.map((o) => `import type { ${o.type} } from '${o.from}';`),
    ...objects.map((o, i) => `export const o${i}: ${o.type} = ${JSON.stringify(o.value)};`),
  ].join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    target: ts.ScriptTarget.ES2022,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    path.resolve(name) === file ? ts.createSourceFile(name, text, language) : read(name, language, ...rest);
  host.fileExists = (
    (exists) => (name: string) =>
      path.resolve(name) === file || exists(name)
  )(host.fileExists.bind(host));
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    .filter(Boolean);
}

describe('deploy/kubernetes: the objects', () => {
  it('are valid Kubernetes objects, by the validators and by the types (no unknown field)', () => {
    new DaemonSet(daemonSet).validate();
    new Service(service).validate();
    new ServiceMonitor(serviceMonitor).validate();
    const objects = [
      { type: 'IDaemonSet', from: 'kubernetes-models/apps/v1/DaemonSet', value: daemonSet },
      { type: 'IService', from: 'kubernetes-models/v1/Service', value: service },
      {
        type: 'IServiceMonitor',
        from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
        value: serviceMonitor,
      },
    ];
    expect(typeErrors(objects)).toEqual([]);
    // The checks can fail: a wrong type, a missing field, an unknown field.
    const broken = structuredClone(daemonSet) as unknown as { spec: { template: { spec: Record<string, unknown> } } };
    broken.spec.template.spec.hostPID = 'yes';
    expect(() => new DaemonSet(broken as unknown as IDaemonSet).validate()).toThrow(/hostPID must be boolean/);
    const unknown = structuredClone(daemonSet) as unknown as { spec: { template: { spec: Record<string, unknown> } } };
    unknown.spec.template.spec.hostPIDD = true;
    expect(typeErrors([{ ...objects[0], value: unknown }]).join('\n')).toMatch(/'"hostPIDD"' does not exist/);
  }, 60_000);

  it('ask for least privilege: host PIDs, a read-only root, read-only logs, three capabilities, limits, a probe', () => {
    expect(pod?.hostPID).toBe(true);
    // Names come from files: no API token, no host network, no privileged mode.
    expect(pod?.automountServiceAccountToken).toBe(false);
    expect(pod?.hostNetwork).toBeUndefined();
    expect(pod?.containers).toHaveLength(1);
    const sc = container?.securityContext;
    expect(sc?.privileged).toBeUndefined();
    expect(sc?.readOnlyRootFilesystem).toBe(true);
    expect(sc?.capabilities?.drop).toEqual(['ALL']);
    expect([...(sc?.capabilities?.add ?? [])].sort()).toEqual(['DAC_READ_SEARCH', 'SYS_ADMIN', 'SYS_PTRACE']);
    // Every mount read-only, /var/log among them, from host paths.
    const mounts = container?.volumeMounts ?? [];
    for (const m of mounts) expect(m.readOnly, m.name).toBe(true);
    const logVolume = pod?.volumes?.find((v) => v.hostPath?.path === '/var/log');
    const logMount = mounts.find((m) => m.name === logVolume?.name);
    expect(logMount).toBeDefined();
    expect(container?.args).toContain(`--kube-logs=${logMount?.mountPath}`);
    expect(container?.args).toContain('--group-by=pod');
    const { requests, limits } = container?.resources ?? {};
    for (const r of ['cpu', 'memory']) {
      expect(requests?.[r], `requests.${r}`).toBeDefined();
      expect(limits?.[r], `limits.${r}`).toBeDefined();
    }
    const probe = container?.livenessProbe?.httpGet;
    expect(probe?.path).toBe('/metrics');
    const port = container?.ports?.find((p) => p.name === probe?.port);
    expect(port?.containerPort).toBe(9497);
    expect(container?.args).toContain(`--listen=0.0.0.0:${port?.containerPort}`);
    // The probe waits longer than a snapshot may take.
    const maxScrape = Number(container?.args?.find((a) => a.startsWith('--max-scrape-seconds='))?.split('=')[1]);
    expect(container?.livenessProbe?.timeoutSeconds).toBeGreaterThan(maxScrape);
  });

  it('refer to each other: the Service selects the pods and names their port, the ServiceMonitor the Service', () => {
    const podLabels = daemonSet.spec?.template.metadata?.labels ?? {};
    expect(daemonSet.spec?.selector.matchLabels).toEqual(podLabels);
    for (const [k, v] of Object.entries(service.spec?.selector ?? {})) expect(podLabels[k]).toBe(v);
    expect(service.metadata?.namespace).toBe(daemonSet.metadata?.namespace);
    expect(service.spec?.ports?.[0].targetPort).toBe('metrics');
    for (const [k, v] of Object.entries(serviceMonitor.spec.selector.matchLabels ?? {}))
      expect(service.metadata?.labels?.[k]).toBe(v);
    expect(serviceMonitor.spec.namespaceSelector?.matchNames).toContain(service.metadata?.namespace);
    const endpoint = serviceMonitor.spec.endpoints?.[0];
    expect(endpoint?.port).toBe(service.spec?.ports?.[0].name);
    // The scrape waits longer than a snapshot may take, and the exporter's own namespace/pod labels are dropped.
    expect(Number.parseInt(endpoint?.scrapeTimeout ?? '0', 10)).toBeGreaterThan(8);
    expect(endpoint?.relabelings?.some((r) => r.action === 'labeldrop' && /namespace\|pod/.test(r.regex ?? ''))).toBe(
      true,
    );
  });
});

describe('deploy/kubernetes: the DaemonSet run', () => {
  afterAll(() => stopAllServes());

  it("starts `pagewalk serve` with the DaemonSet's arguments, and its liveness probe gets /metrics", async () => {
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
    const logs = fs.mkdtempSync('/tmp/pagewalk-ds-logs-');
    try {
      // Loopback on a port of the kernel's choosing, and an empty log tree, for the rest as written.
      const args = (container?.args ?? [])
        .slice(1)
        .filter((a) => !a.startsWith('--listen='))
        .map((a) => (a.startsWith('--kube-logs=') ? `--kube-logs=${logs}` : a));
      expect(container?.args?.[0]).toBe('serve');
      const served = await startServe(args);
      const r = await fetch(`${served.base}${container?.livenessProbe?.httpGet?.path}`);
      expect(r.status).toBe(200);
      expect(await r.text()).toMatch(/^pagewalk_exact 1$/m);
    } finally {
      fs.rmSync(logs, { recursive: true, force: true });
    }
  }, 60_000);
});

// ---- The capabilities, by experiment ----

const PROBE = `
const { snapshot } = require(process.argv[1]);
const pids = JSON.parse(process.argv[2]);
snapshot({ pids }).then((s) => {
  const measured = new Set(s.processes.map((p) => p.pid));
  process.stdout.write(JSON.stringify({ exact: s.source === 'pagemap', measured: pids.map((p) => measured.has(p)) }));
});
`;

interface Probe {
  exact: boolean;
  /** Whether each fixture (root's, nobody's) was measured. */
  measured: boolean[];
}

const haveSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;

describe.runIf(haveSetpriv && isRoot)('deploy/kubernetes: the capabilities, by experiment (setpriv as uid 0)', () => {
  let mine: Fixture;
  let others: Fixture;
  beforeAll(async () => {
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
    // A process of root with every capability, and one of another user: a node's pods are both.
    mine = await startFixture(['anon']);
    others = await startFixture(['anon'], {}, { via: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] });
    mine.stop();
    others.stop();
  });
  afterAll(() => killAllFixtures());

  const probe = (caps: string[]): Probe => {
    const bounding = ['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(',');
    const r = spawnSync(
      'setpriv',
      [
        '--inh-caps=-all',
        `--bounding-set=${bounding}`,
        '--',
        process.execPath,
        '-e',
        PROBE,
        path.join(root, 'dist', 'index.js'),
        JSON.stringify([mine.pid, others.pid]),
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`probe with ${caps.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as Probe;
  };
  const manifest = () => [...(container?.securityContext?.capabilities?.add ?? [])];
  const without = (cap: string) => manifest().filter((c) => c !== cap);

  it("with exactly the DaemonSet's capabilities, every process is measured, exactly", () => {
    expect(fixtureBin('layouts')).toBeTruthy();
    expect(probe(manifest())).toEqual({ exact: true, measured: [true, true] });
  });

  it('without SYS_ADMIN the figures are not exact (no page frame numbers)', () => {
    expect(probe(without('SYS_ADMIN')).exact).toBe(false);
  });

  it("without DAC_READ_SEARCH another user's process cannot be read (pagemap is mode 0400, its owner's)", () => {
    expect(probe(without('DAC_READ_SEARCH')).measured).toEqual([true, false]);
  });

  it("without SYS_PTRACE the kernel's ptrace check refuses other users' processes", () => {
    // SYS_PTRACE is what the kernel's ptrace access check asks for (kernel/ptrace.c,
    // security/commoncap.c): shown here with SYS_ADMIN out of the way.
    expect(probe(['DAC_READ_SEARCH', 'SYS_PTRACE']).measured).toEqual([true, true]);
    expect(probe(['DAC_READ_SEARCH']).measured).toEqual([false, false]);
    // With SYS_ADMIN present, kernels differ: say what this one does.
    const r = probe(without('SYS_PTRACE'));
    console.log(
      `this kernel (${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}), SYS_ADMIN and DAC_READ_SEARCH without SYS_PTRACE: measured ${JSON.stringify(r.measured)}`,
    );
  });
});

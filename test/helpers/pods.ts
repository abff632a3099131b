// Kubernetes pods made by hand for a test: a pod's cgroups in one of the
// kubelet's forms (in a CgroupTree, v1 or v2), a fixture process started in
// each container's cgroup, and the kubelet's log directory and symlinks
// written under a --kube-logs root. Nothing here needs Kubernetes.
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CgroupTree, TreeCgroup } from './cgroup';
import { type Fixture, fixtureBin, startFixture } from './fixture';

export interface ContainerSpec {
  name: string;
  /** The layouts fixture's regions for its process. */
  regions: string[];
  /** No log symlink: the pod's sandbox (pause), or a container of a pod the logs do not name. */
  unnamed?: boolean;
}

export interface PodSpec {
  form: string;
  namespace: string;
  pod: string;
  /** The pod's directory and a container's, relative to the tree's root, from the UID and the container ID. */
  podDir: (uid: string) => string;
  containerDir: (uid: string, id: string) => string;
  /** Static pods have a 32-hex UID. */
  staticPod?: boolean;
  containers: ContainerSpec[];
  /** The logs do not name this pod. */
  unknown?: boolean;
}

export interface RunningContainer {
  spec: ContainerSpec;
  id: string;
  cgroup: TreeCgroup;
  fixture: Fixture;
}

export interface RunningPod {
  spec: PodSpec;
  version: 1 | 2;
  uid: string;
  /** The pod's name: the spec's, with a suffix when one spec runs in several hierarchies. */
  pod: string;
  dir: TreeCgroup;
  containers: RunningContainer[];
  pids: number[];
}

/** systemd unit names carry the UID with underscores. */
export const underscored = (uid: string): string => uid.replaceAll('-', '_');

/** The systemd driver's cgroups of a burstable pod whose containers containerd runs. */
export const SYSTEMD_BURSTABLE_CONTAINERD: Pick<PodSpec, 'podDir' | 'containerDir'> = {
  podDir: (u) => `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${underscored(u)}.slice`,
  containerDir: (u, id) =>
    `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${underscored(u)}.slice/cri-containerd-${id}.scope`,
};

/** A pod of two containers, one of them a family of processes (copy-on-write, shared memory). */
export const WEB_POD: PodSpec = {
  form: 'systemd burstable, containerd',
  namespace: 'shop',
  pod: 'web-0',
  ...SYSTEMD_BURSTABLE_CONTAINERD,
  containers: [
    { name: 'nginx', regions: ['anon', 'shared', 'cow'] },
    { name: 'sidecar', regions: ['anon'] },
  ],
};

/** An empty --kube-logs root: `pods/` and `containers/` under `dir`. */
export function makeKubeLogs(dir: string): string {
  fs.mkdirSync(path.join(dir, 'pods'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'containers'));
  return dir;
}

function writeLogs(logs: string, p: RunningPod): void {
  if (p.spec.unknown) return;
  const podDir = path.join(logs, 'pods', `${p.spec.namespace}_${p.pod}_${p.uid}`);
  for (const c of p.containers) {
    if (c.spec.unnamed) continue;
    fs.mkdirSync(path.join(podDir, c.spec.name), { recursive: true });
    const log = path.join(podDir, c.spec.name, '0.log');
    fs.writeFileSync(log, '');
    fs.symlinkSync(log, path.join(logs, 'containers', `${p.pod}_${p.spec.namespace}_${c.spec.name}-${c.id}.log`));
  }
}

/** Makes the pod's cgroups in the tree, starts each container's fixture in its cgroup, and writes its logs. */
export async function startPod(tree: CgroupTree, spec: PodSpec, logs: string, suffix = ''): Promise<RunningPod> {
  const uid = spec.staticPod ? randomBytes(16).toString('hex') : randomUUID();
  const dir = tree.make(spec.podDir(uid));
  const containers: RunningContainer[] = [];
  for (const c of spec.containers) {
    const id = randomBytes(32).toString('hex');
    const cgroup = tree.make(spec.containerDir(uid, id));
    // Statically linked: it maps no shared library, whose PSS would move with every process
    // that starts or exits on the machine while a pod is compared with smaps_rollup.
    const fixture = await startFixture(c.regions, {}, { bin: fixtureBin('layouts-static'), via: cgroup.via });
    containers.push({ spec: c, id, cgroup, fixture });
  }
  const pod: RunningPod = {
    spec,
    version: tree.version,
    uid,
    pod: `${spec.pod}${suffix}`,
    dir,
    containers,
    pids: containers.flatMap((c) => c.fixture.pids),
  };
  writeLogs(logs, pod);
  return pod;
}

/** Sets a memory limit where the hierarchy has the memory controller; false where it cannot be set. */
export function setMemoryLimit(version: 1 | 2, dir: string, bytes: number): boolean {
  const file = path.join(dir, version === 1 ? 'memory.limit_in_bytes' : 'memory.max');
  if (!fs.existsSync(file)) return false;
  fs.writeFileSync(file, String(bytes));
  return true;
}

// Kubernetes pods and containers, named from the node alone: no API server,
// no credentials. The pod UID and the container ID come from the cgroup
// path of a process (/proc/PID/cgroup), whichever cgroup driver, QoS class
// and runtime made it; the names come from the directories and symlinks the
// kubelet keeps for container logs (/var/log/pods, /var/log/containers).
// A process whose pod the logs do not name is not given a name: nothing is
// guessed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { memoryLimit } from './cgroupfs';
import { describe } from './errors';
import { type CgroupLine, parseCgroupFile } from './proc/cgroup';
import { readProcFile } from './proc/read';

export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

/** What a cgroup path says of a pod: always its UID; the container ID when the process is in a container's cgroup. */
export interface PodCgroup {
  /** The pod's UID, with dashes (`0125ec2f-b64a-4868-8f5b-94b56cbab864`), or the 32 hex digits of a static pod. */
  podUid: string;
  /** The container's 64 hex digits; undefined for a process in the pod's own cgroup. */
  containerId?: string;
  qos: QosClass;
  /** The path of the pod's cgroup: the given path up to the pod's directory (none in the colon form, where one directory is the container's). */
  podPath?: string;
  /** The path of the container's cgroup, when the process is in one. */
  containerPath?: string;
}

// A pod UID: a UUID (dashes, or underscores in systemd unit names, where a
// dash separates name parts), or the 32 hex digits of a static pod's hash.
const UID = '[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}';
const RUNTIMES = 'cri-containerd|crio|docker|libpod';
// systemd driver: kubepods-pod<uid>.slice (guaranteed), kubepods-burstable-pod<uid>.slice.
const SYSTEMD_POD = new RegExp(`^kubepods(?:-(burstable|besteffort))?-pod(${UID})\\.slice$`);
// cgroupfs driver: pod<uid> under kubepods, kubepods/burstable or kubepods/besteffort.
const CGROUPFS_POD = new RegExp(`^pod(${UID})$`);
// The colon form, where a runtime handed systemd's "slice:prefix:id"
// cgroupsPath to a cgroupfs manager: one directory holds pod and container.
const COLON = new RegExp(`^kubepods(?:-(burstable|besteffort))?-pod(${UID})\\.slice:(?:${RUNTIMES}):([0-9a-f]{64})$`);
// A container under a pod: `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`, or bare `<id>`.
const CONTAINER = new RegExp(`^(?:(?:${RUNTIMES})-)?([0-9a-f]{64})(?:\\.scope)?$`);

function uidWithDashes(uid: string): string {
  return uid.replaceAll('_', '-');
}

/**
 * The pod (and container) a cgroup path belongs to, or undefined when it is
 * not a pod's. Takes every form the kubelet and the runtimes make, on cgroup
 * v1, v2 and hybrid alike (the path is the same in each hierarchy):
 *
 * - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`,
 *   `besteffort` likewise, guaranteed `/kubepods.slice/kubepods-pod<uid_>.slice/...`;
 *   runtimes `crio-<id>.scope`, `docker-<id>.scope`;
 * - the colon form `.../kubepods-besteffort-pod<uid_>.slice:cri-containerd:<id>`;
 * - cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>`, `/kubepods/pod<uid>/<id>`.
 *
 * Paths seen from another cgroup namespace (`/../../kubepods.slice/...`),
 * or under a kubelet --cgroup-root, are found the same way. A process in a
 * sub-cgroup of a container is in that container.
 */
export function parsePodCgroup(cgroupPath: string): PodCgroup | undefined {
  if (typeof cgroupPath !== 'string') throw new TypeError(`cgroupPath must be a string, got ${describe(cgroupPath)}`);
  const parts = cgroupPath.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const upTo = (n: number) => `/${parts.slice(0, n + 1).join('/')}`;
    const colon = COLON.exec(parts[i]);
    if (colon) {
      // One directory is the container's; the pod has none of its own in this hierarchy.
      return { podUid: uidWithDashes(colon[2]), containerId: colon[3], qos: qosOf(colon[1]), containerPath: upTo(i) };
    }
    const systemd = SYSTEMD_POD.exec(parts[i]);
    let uid: string | undefined;
    let qos: QosClass | undefined;
    if (systemd) {
      uid = systemd[2];
      qos = qosOf(systemd[1]);
    } else {
      const cgroupfs = CGROUPFS_POD.exec(parts[i]);
      // The cgroupfs pod directory sits right under kubepods or its QoS directory.
      const parent = parts[i - 1];
      const grand = parts[i - 2];
      if (cgroupfs && parent === 'kubepods') {
        uid = cgroupfs[1];
        qos = 'guaranteed';
      } else if (cgroupfs && (parent === 'burstable' || parent === 'besteffort') && grand === 'kubepods') {
        uid = cgroupfs[1];
        qos = parent;
      }
    }
    if (uid === undefined || qos === undefined) continue;
    const container = parts[i + 1] === undefined ? null : CONTAINER.exec(parts[i + 1]);
    return {
      podUid: uidWithDashes(uid),
      ...(container ? { containerId: container[1] } : {}),
      qos,
      podPath: upTo(i),
      ...(container ? { containerPath: upTo(i + 1) } : {}),
    };
  }
  return undefined;
}

function qosOf(word: string | undefined): QosClass {
  return word === 'burstable' || word === 'besteffort' ? word : 'guaranteed';
}

// ---- Names, from the kubelet's log directories ----

export interface PodName {
  namespace: string;
  pod: string;
  uid: string;
  /** The container names that have a log directory in the pod's. */
  containers: string[];
}

export interface ContainerName {
  namespace: string;
  pod: string;
  container: string;
  /** The pod UID the log symlink points into, when its target names it. */
  podUid?: string;
}

/** What the kubelet's log directories say: pods by UID, containers by ID. */
export interface KubeletNames {
  pods: Map<string, PodName>;
  containers: Map<string, ContainerName>;
}

// Kubernetes names: a namespace and a container name are DNS labels, a pod
// name a DNS subdomain. None holds '_', so the kubelet's '_'-joined names
// split one way only.
const LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const SUBDOMAIN = '[a-z0-9](?:[-.a-z0-9]*[a-z0-9])?';
const POD_DIR = new RegExp(`^(${LABEL})_(${SUBDOMAIN})_(${UID.replaceAll('[-_]', '-')})$`);
const CONTAINER_LOG = new RegExp(`^(${SUBDOMAIN})_(${LABEL})_(${LABEL})-([0-9a-f]{64})\\.log$`);

/** `pods/<namespace>_<pod>_<uid>`: the pod a log directory is named after. */
export function parsePodLogDir(name: string): { namespace: string; pod: string; uid: string } | undefined {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${describe(name)}`);
  const m = POD_DIR.exec(name);
  return m ? { namespace: m[1], pod: m[2], uid: m[3] } : undefined;
}

/**
 * `containers/<pod>_<namespace>_<container>-<id>.log`: the container a log
 * symlink is named after; its target (`/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`)
 * adds the pod UID.
 */
export function parseContainerLogName(name: string, target?: string): { id: string; name: ContainerName } | undefined {
  if (typeof name !== 'string') throw new TypeError(`name must be a string, got ${describe(name)}`);
  const m = CONTAINER_LOG.exec(name);
  if (!m) return undefined;
  const named: ContainerName = { namespace: m[2], pod: m[1], container: m[3] };
  if (target !== undefined) {
    const parts = target.split('/');
    const pod = parts.length >= 3 ? parsePodLogDir(parts[parts.length - 3]) : undefined;
    // A target whose pod directory names another pod says nothing about this one.
    if (pod && pod.namespace === named.namespace && pod.pod === named.pod && parts.at(-2) === named.container)
      named.podUid = pod.uid;
  }
  return { id: m[4], name: named };
}

function listDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    // A node that runs no pods (or a root given by mistake) has no such directory: no names.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR')
      return [];
    throw err;
  }
}

/**
 * Reads the kubelet's log directories under `root` (default /var/log):
 * `pods/<namespace>_<pod>_<uid>/<container>/` names each pod by its UID and
 * lists its containers; the `containers/<pod>_<namespace>_<container>-<id>.log`
 * symlinks name each container by its ID. Missing directories give no
 * names; other errors (EACCES) are thrown with their path.
 */
export function readKubeletNames(root = '/var/log'): KubeletNames {
  if (typeof root !== 'string') throw new TypeError(`root must be a string, got ${describe(root)}`);
  const pods = new Map<string, PodName>();
  const podsDir = path.join(root, 'pods');
  for (const entry of listDir(podsDir)) {
    if (!entry.isDirectory()) continue;
    const pod = parsePodLogDir(entry.name);
    if (!pod) continue;
    const containers = listDir(path.join(podsDir, entry.name))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    pods.set(pod.uid, { ...pod, containers });
  }
  const containers = new Map<string, ContainerName>();
  const containersDir = path.join(root, 'containers');
  for (const entry of listDir(containersDir)) {
    let target: string | undefined;
    if (entry.isSymbolicLink()) {
      try {
        target = fs.readlinkSync(path.join(containersDir, entry.name));
      } catch {
        // removed meanwhile: the name alone still says what it was
      }
    }
    const found = parseContainerLogName(entry.name, target);
    if (found) containers.set(found.id, found.name);
  }
  return { pods, containers };
}

/** A process's place in Kubernetes, by name. */
export interface PodIdentity {
  namespace: string;
  pod: string;
  podUid: string;
  qos: QosClass;
  /** The container's name; undefined for a process of the pod outside every named container (the sandbox's pause process). */
  container?: string;
  containerId?: string;
}

/**
 * The names of the pod (and container) a cgroup path belongs to, or
 * undefined when the path is no pod's or the log directories do not name
 * the pod. A container is named only when its log symlink names it within
 * that pod.
 */
export function podIdentity(cgroupPath: string, names: KubeletNames): PodIdentity | undefined {
  const found = parsePodCgroup(cgroupPath);
  if (!found) return undefined;
  const pod = names.pods.get(found.podUid);
  if (!pod) return undefined;
  const identity: PodIdentity = { namespace: pod.namespace, pod: pod.pod, podUid: pod.uid, qos: found.qos };
  if (found.containerId === undefined) return identity;
  identity.containerId = found.containerId;
  const c = names.containers.get(found.containerId);
  if (c && c.namespace === pod.namespace && c.pod === pod.pod && (c.podUid === undefined || c.podUid === pod.uid))
    identity.container = c.container;
  return identity;
}

/**
 * The memory limit in bytes of the pod (or of the container) process `pid`
 * is in, from the cgroup file system; undefined when there is none or it
 * cannot be read (the process exited, the cgroup is not mounted here, the
 * colon form gives the pod no directory). The memory hierarchy is tried
 * first (v1 on a hybrid host), then the others.
 */
export function podMemoryLimit(pid: number, level: 'pod' | 'container'): number | undefined {
  let lines: CgroupLine[];
  try {
    lines = parseCgroupFile(readProcFile(pid, 'cgroup'));
  } catch {
    return undefined; // exited
  }
  const memory = lines.filter((l) => l.id !== 0 && l.controllers.includes('memory'));
  for (const line of [...memory, ...lines.filter((l) => l.id === 0)]) {
    const found = parsePodCgroup(line.path);
    const at = level === 'pod' ? found?.podPath : found?.containerPath;
    if (at === undefined) continue;
    const limit = memoryLimit(at, line.id === 0 ? 2 : 1);
    if (limit !== undefined) return limit;
  }
  return undefined;
}

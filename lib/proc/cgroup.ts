// /proc/PID/cgroup: which memory cgroup a process is charged to, under
// cgroup v2, v1 and hybrid setups, and a name a person recognises for it.
// Parsing is kept apart from reading so that every layout can be tested
// from text.
import { type ProcTarget, readProcFile } from './read';

export interface CgroupLine {
  /** Hierarchy id: 0 for the v2 hierarchy. */
  id: number;
  /** Controllers bound to the hierarchy ('memory', 'cpu', 'name=systemd'); empty for v2. */
  controllers: string[];
  path: string;
}

export interface MemoryCgroup {
  /** Path inside the memory hierarchy, as /proc/PID/cgroup gives it. */
  path: string;
  /** 1 when the memory controller has its own v1 hierarchy (v1 or hybrid), 2 under the unified hierarchy. */
  version: 1 | 2;
  /** The path shortened for people: container ids, systemd units (see shortCgroupName). */
  name: string;
}

/** The lines of /proc/PID/cgroup: `ID:CONTROLLERS:/path`. */
export function parseCgroupFile(text: string): CgroupLine[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const lines: CgroupLine[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    // The path may itself contain ':' (cgroup names are free-form).
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 1 || second < 0) throw new RangeError(`not a /proc/PID/cgroup line: ${JSON.stringify(line)}`);
    const id = Number(line.slice(0, first));
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`bad hierarchy id in ${JSON.stringify(line)}`);
    const controllers = line.slice(first + 1, second);
    lines.push({ id, controllers: controllers ? controllers.split(',') : [], path: line.slice(second + 1) });
  }
  return lines;
}

/**
 * The memory cgroup among the lines: the v1 hierarchy that carries the
 * memory controller when there is one (v1 and hybrid setups), otherwise the
 * unified v2 hierarchy (`0::/path`). Undefined when neither is there.
 */
export function memoryCgroup(lines: CgroupLine[]): MemoryCgroup | undefined {
  const v1 = lines.find((l) => l.id !== 0 && l.controllers.includes('memory'));
  if (v1) return { path: v1.path, version: 1, name: shortCgroupName(v1.path) };
  const v2 = lines.find((l) => l.id === 0 && l.controllers.length === 0);
  if (v2) return { path: v2.path, version: 2, name: shortCgroupName(v2.path) };
  return undefined;
}

// Container runtimes name a container's cgroup after its 64-hex id:
// systemd driver `docker-<id>.scope`, `cri-containerd-<id>.scope`,
// `crio-<id>.scope`, `libpod-<id>.scope`, `nerdctl-<id>.scope`; cgroupfs
// driver a bare `<id>` (`/docker/<id>`, `/kubepods/.../pod<uid>/<id>`).
// Runtimes print the first 12 hex digits (`docker ps`, `podman ps`,
// `crictl ps` truncate the same way), so that is the name people know.
const CONTAINER = /^(?:(?:docker|cri-containerd|crio|libpod|nerdctl)-)?([0-9a-f]{64})(?:\.scope)?$/;
// The monitor process of a container (Podman's and CRI-O's conmon) has a
// cgroup beside the container's; it is not the container.
const CONMON = /^(?:libpod|crio)-conmon-([0-9a-f]{64})\.scope$/;
const SYSTEMD_UNIT = /\.(?:scope|service|slice)$/;

/** systemd escapes unit names (`\x2d` for '-', `\x40` for '@'). */
function unescapeUnit(unit: string): string {
  return unit.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * A cgroup path as a person recognises it: a container's cgroup (Docker,
 * containerd, CRI-O, Podman, nerdctl; systemd or cgroupfs driver; processes
 * in sub-cgroups of it too) becomes the container id's first 12 hex digits
 * (`conmon-<12 hex>` for a container's monitor); a systemd unit
 * (`.service`, `.scope`, `.slice`) becomes the unit's own name
 * (`/system.slice/nginx.service` is `nginx.service`,
 * `/user.slice/user-1000.slice/session-3.scope` is `session-3.scope`); any
 * other path stays as it is. Different paths can share a short name (two
 * `foo.service` units of different users); they then form one group.
 */
export function shortCgroupName(path: string): string {
  if (typeof path !== 'string') throw new TypeError('path must be a string');
  const parts = path.split('/').filter(Boolean);
  // The innermost container wins: a container inside a container is the inner one.
  for (let i = parts.length - 1; i >= 0; i--) {
    const conmon = CONMON.exec(parts[i]);
    if (conmon) return `conmon-${conmon[1].slice(0, 12)}`;
    const container = CONTAINER.exec(parts[i]);
    if (container) return container[1].slice(0, 12);
  }
  const last = parts.at(-1);
  if (last && SYSTEMD_UNIT.test(last)) return unescapeUnit(last);
  return path || '/';
}

/**
 * The memory cgroup of a process, from /proc/PID/cgroup. Undefined when the
 * kernel has no memory controller in any hierarchy.
 */
export function readMemoryCgroup(pid: ProcTarget): MemoryCgroup | undefined {
  return memoryCgroup(parseCgroupFile(readProcFile(pid, 'cgroup')));
}

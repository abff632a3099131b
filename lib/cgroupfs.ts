// The cgroup file system: where the memory hierarchy is mounted, and the
// memory limit of a cgroup given by its path (as /proc/PID/cgroup shows
// it). Read for the limits of pods and containers the exporter exports.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The mount points of the hierarchies that can hold a memory limit: v1 ones with the memory controller, and v2 ones. */
export function memoryMounts(mountinfo: string): { version: 1 | 2; dir: string }[] {
  const found: { version: 1 | 2; dir: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [fstype, , options = ''] = right.split(' ');
    // Octal escapes (\040 for a space) in the mount point.
    const dir = (left.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
      String.fromCharCode(Number.parseInt(o, 8)),
    );
    if (fstype === 'cgroup2') found.push({ version: 2, dir });
    else if (fstype === 'cgroup' && options.split(',').includes('memory')) found.push({ version: 1, dir });
  }
  return found;
}

// v1 reports "no limit" as the largest page-counter value (just under 2^63).
const V1_UNLIMITED = 2 ** 62;

function readLimit(dir: string, version: 1 | 2): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, version === 1 ? 'memory.limit_in_bytes' : 'memory.max'), 'utf8').trim();
  } catch {
    return undefined; // no such cgroup here, or no memory controller in this hierarchy
  }
  if (text === 'max') return undefined;
  const bytes = Number(text);
  return Number.isFinite(bytes) && bytes < V1_UNLIMITED ? bytes : undefined;
}

/**
 * The memory limit in bytes of the cgroup at `cgroupPath` (as
 * /proc/PID/cgroup gives it) in a hierarchy of the given version, or
 * undefined when it has none (`max`) or cannot be found. A path seen from
 * another cgroup namespace starts with `..`: it is looked for from its first
 * `kubepods` directory, which the kubelet makes at the hierarchy's root.
 */
export function memoryLimit(
  cgroupPath: string,
  version: 1 | 2,
  mounts: { version: 1 | 2; dir: string }[] = memoryMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8')),
): number | undefined {
  let parts = cgroupPath.split('/').filter(Boolean);
  if (parts.includes('..')) {
    const root = parts.findIndex((p) => p.startsWith('kubepods'));
    if (root < 0) return undefined;
    parts = parts.slice(root);
  }
  for (const m of mounts) {
    if (m.version !== version) continue;
    const limit = readLimit(path.join(m.dir, ...parts), version);
    if (limit !== undefined) return limit;
  }
  return undefined;
}

// /proc/PID/mountinfo: the mounts a process sees, with each one's
// filesystem type and device.
import { type ProcTarget, readProcFile } from './read';

export interface Mount {
  id: number;
  parentId: number;
  deviceMajor: number;
  deviceMinor: number;
  /** Path inside the filesystem that is mounted (a bind mount's subtree). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-superblock options (e.g. `rw,memory` for a v1 cgroup hierarchy). */
  superOptions: string[];
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
function unescapeField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const dash = f.indexOf('-', 6);
    if (dash < 0 || f.length < dash + 3) throw new RangeError(`not a mountinfo line: ${JSON.stringify(line)}`);
    const [major, minor] = f[2].split(':').map(Number);
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      deviceMajor: major,
      deviceMinor: minor,
      root: unescapeField(f[3]),
      mountPoint: unescapeField(f[4]),
      fsType: f[dash + 1],
      source: unescapeField(f[dash + 2]),
      superOptions: (f[dash + 3] ?? '').split(','),
    });
  }
  return out;
}

export function readMountinfo(pid: ProcTarget = 'self'): Mount[] {
  return parseMountinfo(readProcFile(pid, 'mountinfo'));
}

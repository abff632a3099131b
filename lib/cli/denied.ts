// Why the kernel refused to let pagewalk read a process. Opening
// /proc/PID/pagemap (or maps, smaps) needs PTRACE_MODE_READ on the target;
// "run as root" is the answer only when pagewalk is not root. As root the
// refusal has other causes, each with its own remedy: a Yama ptrace policy,
// another user namespace, a Landlock sandbox around pagewalk, or a security
// module or kernel patch that protects the target (pid 1 on the Firecracker
// kernel these docs were written on: see docs/cli.md).
import * as fs from 'node:fs';
import { CAP_SYS_ADMIN, CAP_SYS_PTRACE, type ProcStatus, readStatus } from '../proc/status';
import { PRIVILEGE } from './errors';

const has = (caps: bigint, cap: bigint) => ((caps >> cap) & 1n) === 1n;

function readText(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Whether pagewalk itself runs in a Landlock domain: a sandboxed process may
 * not inspect any process outside its domain, kernel threads included, so
 * reading kthreadd's namespace link fails for it alone.
 */
function inLandlockSandbox(): boolean {
  const stat = readText('/proc/2/stat');
  if (!stat?.includes('(kthreadd)')) return false;
  try {
    fs.readlinkSync('/proc/2/ns/user');
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES';
  }
}

/**
 * The cause of a refusal to read process `pid`, as a phrase after
 * "permission denied reading PATH: ". Reads only what any process may read:
 * status, uid_map, the Yama setting, a kernel thread's namespace link.
 */
export function deniedCause(pid: number): string {
  let self: ProcStatus;
  let target: ProcStatus;
  try {
    self = readStatus('self');
    target = readStatus(pid);
  } catch {
    return PRIVILEGE;
  }
  const ptrace = has(self.capEff, CAP_SYS_PTRACE);
  const yama = Number(readText('/proc/sys/kernel/yama/ptrace_scope')?.trim());
  if (yama === 3) return 'Yama forbids every process inspection (kernel.yama.ptrace_scope = 3, fixed until reboot)';
  if (yama === 2 && !ptrace) return 'Yama allows it only with CAP_SYS_PTRACE (kernel.yama.ptrace_scope = 2)';
  if (!has(self.capEff, CAP_SYS_ADMIN) && target.uid !== process.getuid?.())
    return `process ${pid} belongs to uid ${target.uid}: ${PRIVILEGE}`;
  const ownMap = readText('/proc/self/uid_map');
  const theirMap = readText(`/proc/${pid}/uid_map`);
  if (ownMap !== undefined && theirMap !== undefined && ownMap !== theirMap)
    return `process ${pid} runs in another user namespace, where pagewalk holds no capabilities`;
  if (inLandlockSandbox()) return 'pagewalk runs in a Landlock sandbox, which hides every process outside it';
  if (!has(self.capEff, CAP_SYS_ADMIN)) return PRIVILEGE;
  return (
    `the kernel refused although pagewalk holds CAP_SYS_ADMIN${ptrace ? ' and CAP_SYS_PTRACE' : ''} in process ${pid}'s ` +
    'user namespace, and no Yama or Landlock policy applies: a security module or the kernel itself protects it'
  );
}

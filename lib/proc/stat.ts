// /proc/PID/stat: one line of space-separated fields (proc(5)).
import { type ProcTarget, readProcFile } from './read';

export interface ProcStat {
  pid: number;
  /** The command name (comm), which may itself hold spaces and parentheses. */
  comm: string;
  /** One letter: R running, S sleeping, D disk sleep, Z zombie, T stopped, X dead ... */
  state: string;
  ppid: number;
  /** The kernel's PF_* flags (PF_KTHREAD = 0x00200000). */
  flags: number;
  /** Start time after boot in clock ticks: with the pid, it names one process. */
  startTime: string;
}

/** PF_KTHREAD in ProcStat.flags: a kernel thread. */
export const PF_KTHREAD = 0x00200000;

export function parseStat(text: string): ProcStat {
  // comm may hold spaces and parentheses: the fields after it start after the last ')'.
  const close = text.lastIndexOf(')');
  const open = text.indexOf('(');
  if (open < 0 || close < open) throw new SyntaxError(`not a stat line: ${JSON.stringify(text)}`);
  const rest = text.slice(close + 2).split(' ');
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: Number(rest[1]),
    flags: Number(rest[6]),
    startTime: rest[19],
  };
}

export function readStat(pid: ProcTarget): ProcStat {
  // latin1: comm is bytes, not necessarily UTF-8.
  return parseStat(readProcFile(pid, 'stat', 'latin1'));
}

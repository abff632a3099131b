// /proc/PID/cmdline: the arguments, each ended by a NUL byte.
import { type ProcTarget, readProcFile } from './read';

/** The command line as one string, arguments joined by spaces ('' for kernel threads and zombies). */
export function parseCmdline(text: string): string {
  return text.replace(/\0+$/, '').replace(/\0/g, ' ');
}

export function readCmdline(pid: ProcTarget): string {
  return parseCmdline(readProcFile(pid, 'cmdline'));
}

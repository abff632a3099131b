// What a measurement needs to know of each process besides its pages, from
// /proc/PID/{stat,status,cmdline,exe} in one native call
// (native/proc_facts.h): each file opened and read once, no string or
// regular expression per file. snapshot() reads them once per process while
// listing and hands them on, instead of reading stat three times, status
// twice and exe twice. The parsers of stat.ts, status.ts and cmdline.ts
// read the same fields the same way (comm as latin1 bytes, cmdline's NULs
// as spaces); they remain the API's readers of one file at a time.
import { FactField, native } from '../native';
import { parseCmdline } from './cmdline';

export interface ProcFacts {
  pid: number;
  // stat
  ppid: number;
  comm: string;
  /** One letter, as ProcStat.state. */
  state: string;
  flags: number;
  /** Clock ticks after boot. */
  startTime: number;
  // status (0 when not asked for)
  uid: number;
  /** VmSize in bytes; 0 without an mm. */
  vmSize: number;
  vmRss: number;
  /** cmdline with its NULs as spaces ('' when not asked for or unreadable). */
  command: string;
  /** The exe link, '' when unreadable (kernel threads, zombies) or not asked for. */
  exe: string;
}

/** Which files readFacts() reads. */
export const FACTS_STAT = native.factsWanted.stat;
export const FACTS_STATUS = native.factsWanted.status;
export const FACTS_CMDLINE = native.factsWanted.cmdline;
export const FACTS_EXE = native.factsWanted.exe;

const numbers = new Float64Array(native.factFields);
let text = new Uint8Array(16 * 1024);

/**
 * The facts of pid the `wanted` bits name (stat always, it names the
 * process). Throws the Node-style error of the stat or status read (ENOENT
 * or ESRCH once the process is gone), with its path.
 */
export function readFacts(pid: number, wanted: number): ProcFacts {
  let bytes = native.procFacts(pid, wanted | FACTS_STAT, numbers, text);
  if (bytes > text.length) {
    text = new Uint8Array(bytes * 2);
    bytes = native.procFacts(pid, wanted | FACTS_STAT, numbers, text);
  }
  const buffer = Buffer.from(text.buffer, text.byteOffset, Math.min(bytes, text.length));
  const commEnd = numbers[FactField.CommBytes];
  const cmdlineEnd = commEnd + numbers[FactField.CmdlineBytes];
  const exeBytes = numbers[FactField.ExeBytes];
  return {
    pid,
    ppid: numbers[FactField.Ppid],
    comm: buffer.toString('latin1', 0, commEnd),
    state: String.fromCharCode(numbers[FactField.State]),
    flags: numbers[FactField.Flags],
    startTime: numbers[FactField.StartTime],
    uid: numbers[FactField.Uid],
    vmSize: numbers[FactField.VmSizeKb] * 1024,
    vmRss: numbers[FactField.VmRssKb] * 1024,
    command: cmdlineEnd > commEnd ? parseCmdline(buffer.toString('utf8', commEnd, cmdlineEnd)) : '',
    exe: exeBytes > 0 ? buffer.toString('utf8', cmdlineEnd, cmdlineEnd + exeBytes) : '',
  };
}

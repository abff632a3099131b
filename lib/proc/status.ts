// /proc/PID/status: "Key:\tvalue" lines (proc(5)).
import { type ProcTarget, readProcFile } from './read';

export interface ProcStatus {
  /** The real uid (first of the four Uid: values). */
  uid: number;
  /** Effective capabilities (CapEff:), a bit mask; 0n when absent. */
  capEff: bigint;
  /** Mapped address space in bytes (VmSize:; the gate area not included); 0 without an mm. */
  vmSize: number;
  /** Resident memory in bytes (VmRSS:); 0 without an mm. */
  vmRss: number;
}

/** CAP_SYS_ADMIN's bit number in ProcStatus.capEff. */
export const CAP_SYS_ADMIN = 21n;
/** CAP_SYS_PTRACE's bit number: what lets root read any process's pagemap. */
export const CAP_SYS_PTRACE = 19n;

export function parseStatus(text: string): ProcStatus {
  const uid = /^Uid:\s+(\d+)/m.exec(text)?.[1];
  const mask = (key: string) => {
    const hex = new RegExp(`^${key}:\\s*([0-9a-f]+)$`, 'm').exec(text)?.[1];
    return hex === undefined ? 0n : BigInt(`0x${hex}`);
  };
  const vmSizeKb = /^VmSize:\s+(\d+) kB$/m.exec(text)?.[1];
  return {
    uid: Number(uid ?? 0),
    capEff: mask('CapEff'),
    vmSize: Number(vmSizeKb ?? 0) * 1024,
    vmRss: Number(/^VmRSS:\s+(\d+) kB$/m.exec(text)?.[1] ?? 0) * 1024,
  };
}

export function readStatus(pid: ProcTarget): ProcStatus {
  return parseStatus(readProcFile(pid, 'status', 'latin1'));
}

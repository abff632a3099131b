// Measuring many processes for a command: snapshot() with a progress bar,
// the filters the commands share, and the warnings about what was left out.
import { type ProcessInfo, type Snapshot, type SnapshotOptions, snapshot } from '../snapshot';
import { CliError, EXIT_RUNTIME, PRIVILEGE, parseRegex } from './errors';
import { warn } from './output';
import { progress } from './progress';

export async function measure(options: SnapshotOptions): Promise<Snapshot> {
  const bar = progress();
  try {
    return await snapshot({ ...options, onProgress: bar.onProgress });
  } finally {
    bar.end();
  }
}

export function processFilter(o: { processfilter?: string; userfilter?: string }): (p: ProcessInfo) => boolean {
  const pre = parseRegex(o.processfilter);
  const ure = parseRegex(o.userfilter);
  // smem leaves out what has no mappings: kernel threads.
  return (p) => !p.kernelThread && (!pre || pre.test(p.name) || pre.test(p.command)) && (!ure || ure.test(p.user));
}

/** Processes left out for want of privilege; as root the advice would not help, so none are counted. */
export function deniedCount(snap: Snapshot): number {
  if (process.geteuid?.() === 0) return 0;
  return snap.gone.filter((g) => g.reason === 'denied').length;
}

export function checkExact(snap: Snapshot, needMappings: boolean): void {
  if (snap.source !== 'pagemap') {
    if (needMappings) throw new CliError(`per-mapping figures ${PRIVILEGE}`, EXIT_RUNTIME);
    warn(`not running as root (no CAP_SYS_ADMIN): RSS/PSS/USS come from smaps_rollup, exact figures ${PRIVILEGE}`);
  }
  const denied = deniedCount(snap);
  if (denied) warn(`${denied} processes could not be read (permission denied) and are left out: run as root`);
}

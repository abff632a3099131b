// Measuring many processes for a command: snapshot() with a progress bar,
// the filters and options the commands share, and the warnings about what
// was left out or could not be exact.
import type { Command } from 'commander';
import { DEFAULT_LOCK_PAUSES, type LockPauses, lockPauseMicros, type ProcessMemory } from '../accounting';
import { type GoneProcess, type ProcessInfo, type Snapshot, type SnapshotOptions, snapshot } from '../snapshot';
import { PRIVILEGE, usage } from './errors';
import { parseRegex } from './options';
import { warn } from './output';
import { progress } from './progress';

/**
 * What `--include-self` selects. By default the command reports every
 * process as it is once pagewalk has exited (snapshot's `excludeSelf`): the
 * command maps libc and node itself, which would otherwise lower the PSS of
 * every process sharing them.
 */
export interface ObserverOption {
  includeSelf?: boolean;
  /** `--lock-pauses`: "HOLD,PAUSE" in microseconds, or "off". */
  lockPauses?: string;
  /** `--verbose`: name every process that could not be read, not only how many. */
  verbose?: boolean;
}

/** Adds `--include-self`, `--lock-pauses` and `--verbose` to a command that measures processes. */
export function observerOption(command: Command): Command {
  const { holdMicros, pauseMicros } = DEFAULT_LOCK_PAUSES;
  return command
    .option(
      '--include-self',
      "count pagewalk's own mappings, as the kernel does while it runs (default: figures as they are once pagewalk has exited)",
    )
    .option(
      '--lock-pauses <hold,pause|off>',
      `each time reading a running process has taken HOLD us, pause PAUSE us if one of its threads could be waiting for its own mmap lock (runnable or blocked), so that it never waits long; off: never (default ${holdMicros},${pauseMicros})`,
    )
    .option('--verbose', 'name every process that could not be read (default: how many, and why)');
}

/** The library options the observer flags stand for. */
export function observerSettings(o: ObserverOption): { excludeSelf: boolean; lockPauses?: LockPauses | false } {
  const settings = { excludeSelf: !o.includeSelf };
  if (o.lockPauses === undefined) return settings;
  if (o.lockPauses === 'off') return { ...settings, lockPauses: false };
  const m = /^(\d+),(\d+)$/.exec(o.lockPauses);
  const lockPauses = m ? { holdMicros: Number(m[1]), pauseMicros: Number(m[2]) } : undefined;
  try {
    if (lockPauses) lockPauseMicros(lockPauses);
  } catch (err) {
    throw usage(`invalid --lock-pauses "${o.lockPauses}": ${(err as Error).message}`);
  }
  if (!lockPauses) throw usage(`invalid --lock-pauses "${o.lockPauses}": expected HOLD,PAUSE in microseconds, or off`);
  return { ...settings, lockPauses };
}

export async function measure(options: SnapshotOptions, o: ObserverOption = {}): Promise<Snapshot> {
  const settings = observerSettings(o);
  const bar = progress();
  try {
    return await snapshot({ ...settings, ...options, onProgress: bar.onProgress });
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

/** Processes left out because this user may not read them. */
export function deniedProcesses(snap: Snapshot): GoneProcess[] {
  return snap.gone.filter((g) => g.reason === 'denied');
}

/** One line naming them: "3 processes ... left out: sshd (612 640), cron (455)". */
export function deniedLine(denied: GoneProcess[], named = true): string {
  const byName = new Map<string, number[]>();
  for (const g of denied) {
    const name = g.name || '?';
    byName.set(name, [...(byName.get(name) ?? []), g.pid]);
  }
  const names = [...byName].map(([name, pids]) => `${name} (${pids.join(' ')})`).join(', ');
  const advice = process.geteuid?.() === 0 ? '' : '; run as root to include them';
  const verb =
    denied.length === 1
      ? 'process could not be read (permission denied) and is'
      : 'processes could not be read (permission denied) and are';
  // On a busy machine the names run to a thousand characters: a count, and how to see them.
  if (!named) return `${denied.length} ${verb} left out${advice} (--verbose names them)`;
  return `${denied.length} ${verb} left out${advice}: ${names}`;
}

/** The warning of figures that come from the kernel's smaps files rather than pagemap. */
export function degradedWarning(perMapping: boolean): string {
  const files = perMapping ? '/proc/PID/smaps_rollup and, per mapping, /proc/PID/smaps' : '/proc/PID/smaps_rollup';
  return `not running as root (no CAP_SYS_ADMIN): figures are the kernel's from ${files}, with pagewalk's own mappings counted; exact figures ${PRIVILEGE}`;
}

export interface ExactnessWarning {
  /** Per-mapping figures were asked for (they come from smaps without privilege). */
  perMapping?: boolean;
  /** `--verbose`: name the unreadable processes. */
  verbose?: boolean;
  /** Only the unreadable processes the user asked about count (group -P PATTERN). */
  relevant?: (g: GoneProcess) => boolean;
}

/** Warns when figures are not pagemap-exact, and says what was left out. */
export function checkExact(snap: Snapshot, w: ExactnessWarning = {}): void {
  if (snap.source !== 'pagemap') warn(degradedWarning(Boolean(w.perMapping)));
  const denied = deniedProcesses(snap).filter(w.relevant ?? (() => true));
  if (denied.length) warn(deniedLine(denied, Boolean(w.verbose)));
}

/** The same warning for one process measured alone. */
export function checkExactProcess(pm: ProcessMemory, perMapping = false): void {
  if (pm.source !== 'pagemap') warn(degradedWarning(perMapping));
}

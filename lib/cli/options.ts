// The checks of option values that several commands share: each value kind
// is parsed, and its error worded, in one place.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_KUBE_LOGS, GROUP_BY, type GroupBy, type Grouping, KUBERNETES_LABELS } from '../groups';
import { PF_KTHREAD, readStat } from '../proc/stat';
import { CliError, EXIT_NOT_FOUND, EXIT_RUNTIME, usage } from './errors';
import { warn } from './output';

/** Seconds (a number, 0 or more, fractions allowed), returned in milliseconds. */
export function parseSeconds(text: string, flag: string): number {
  const s = Number(text);
  if (text.trim() === '' || !Number.isFinite(s) || s < 0)
    throw usage(`invalid ${flag} "${text}": expected seconds (a number, 0 or more)`);
  return Math.round(s * 1000);
}

/** A count as given to -n: a whole number, 1 or more. */
export function parseCount(text: string | undefined, flag = '-n'): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw usage(`invalid ${flag} "${text}": expected a whole number, 1 or more`);
  return Number(text);
}

/** A grouping key as given to --by or --group-by. */
export function parseGroupBy(text: string, flag: string): GroupBy {
  if (!GROUP_BY.includes(text as GroupBy)) throw usage(`invalid ${flag} "${text}" (known: ${GROUP_BY.join(' ')})`);
  return text as GroupBy;
}

/**
 * Says so when a Kubernetes grouping key is given a --kube-logs root with
 * neither of the kubelet's log directories: every process then keeps its
 * cgroup group, which a mistyped path (or a missing mount) would otherwise hide.
 */
export function checkKubeLogs(grouping: Grouping | undefined, dir: string): void {
  if (typeof grouping !== 'string' || !KUBERNETES_LABELS[grouping]) return;
  if (['pods', 'containers'].some((d) => fs.existsSync(path.join(dir, d)))) return;
  warn(`no kubelet log directories (pods/, containers/) under ${dir}: no pod is named (--kube-logs)`);
}

/** `--kube-logs DIR`, for the commands that group by pod, container or namespace. */
export function addKubeLogsOption(command: Command): Command {
  return command.option(
    '--kube-logs <dir>',
    "where the kubelet's log directories (pods/, containers/) name pods and containers",
    DEFAULT_KUBE_LOGS,
  );
}

/** A process id that exists now (else exit 3). */
export function parsePid(text: string): number {
  if (!/^\d+$/.test(text)) throw usage(`invalid pid "${text}"`);
  const pid = Number(text);
  if (pid < 1 || pid > 4_194_304) throw usage(`invalid pid "${text}"`);
  if (!fs.existsSync(`/proc/${pid}/stat`)) throw new CliError(`no such process: ${pid}`, EXIT_NOT_FOUND);
  return pid;
}

/**
 * A process id whose user memory a command reads (show, pages, picture). A
 * kernel thread exists but has no user address space: said as such, rather
 * than "no such process" or an empty table.
 */
export function parseUserPid(text: string): number {
  const pid = parsePid(text);
  let stat: ReturnType<typeof readStat>;
  try {
    stat = readStat(pid);
  } catch {
    throw new CliError(`no such process: ${pid}`, EXIT_NOT_FOUND);
  }
  if (stat.flags & PF_KTHREAD)
    throw new CliError(`process ${pid} (${stat.comm}) is a kernel thread: it has no user memory`, EXIT_RUNTIME);
  return pid;
}

/** A regular expression as given to the filters. */
export function parseRegex(text: string | undefined): RegExp | undefined {
  if (text === undefined) return undefined;
  try {
    return new RegExp(text);
  } catch (err) {
    throw usage(`invalid regex "${text}": ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

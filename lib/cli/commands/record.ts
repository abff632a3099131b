// pagewalk record: snapshots over time as JSON Lines, one sample a line with
// its time (see lib/diff.ts, Sample), for `pagewalk diff` and other tools.
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { GROUP_BY } from '../../groups';
import { watch } from '../../watch';
import { cannotWrite, explain, usage } from '../errors';
import { checkExact, type ObserverOption, observerOption, observerSettings, processFilter } from '../measure';
import { addKubeLogsOption, checkKubeLogs, parseCount, parseGroupBy, parseSeconds } from '../options';
import { Output } from '../output';

interface RecordOptions extends ObserverOption {
  delay: string;
  count?: string;
  output?: string;
  append?: boolean;
  mappings?: boolean;
  processfilter?: string;
  userfilter?: string;
  by?: string;
  kubeLogs: string;
}

async function recordCommand(o: RecordOptions): Promise<void> {
  const interval = parseSeconds(o.delay, '-d');
  const count = parseCount(o.count);
  const filter = processFilter(o);
  const groupBy = o.by === undefined ? undefined : parseGroupBy(o.by, '--by');
  checkKubeLogs(groupBy, o.kubeLogs);
  if (o.append && o.output === undefined) throw usage('--append needs -o FILE');
  let fd: number | undefined;
  if (o.output !== undefined) {
    try {
      fd = fs.openSync(o.output, o.append ? 'a' : 'w');
    } catch (err) {
      throw cannotWrite(o.output, err);
    }
  }
  const out = new Output();
  const ac = new AbortController();
  // Ctrl-C or a kill ends the record after the sample under way: every line stays whole.
  const stop = () => ac.abort();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, stop);
  try {
    for await (const step of watch({
      interval,
      count,
      signal: ac.signal,
      filter,
      mappings: o.mappings,
      groupBy,
      kubeLogs: o.kubeLogs,
      ...observerSettings(o),
    })) {
      if (step.index === 0) checkExact(step.snapshot, { ...o, perMapping: Boolean(o.mappings) });
      const line = `${JSON.stringify(step.sample)}\n`;
      if (fd === undefined) {
        await out.write(line);
        await out.flush();
      } else fs.writeSync(fd, line);
    }
  } catch (err) {
    throw explain(err);
  } finally {
    for (const s of signals) process.off(s, stop);
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function registerRecord(program: Command): void {
  const command = program
    .command('record')
    .description('snapshots over time as JSON Lines, one timestamped sample a line (sizes in bytes)')
    .option('-d, --delay <seconds>', 'seconds between samples', '2')
    .option('-n, --count <n>', 'stop after N samples (default: at Ctrl-C)')
    .option('-o, --output <file>', 'write to FILE (default: stdout)')
    .option('-a, --append', 'add to the end of FILE (recording from cron, say) rather than replacing it')
    .option('-m, --mappings', 'per-mapping figures too, summed per path within each process')
    .option('--by <key>', `each sample's groups too, by ${GROUP_BY.join(', ')} (what they alone hold needs root)`)
    .option('-P, --processfilter <regex>', 'only processes whose name or command matches')
    .option('-U, --userfilter <regex>', 'only processes whose user matches');
  addKubeLogsOption(observerOption(command)).action(recordCommand);
}

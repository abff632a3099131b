// --group-by / --by and --config, shared by serve, group and smem.
import { GROUP_BY, type GroupBy, type GroupConfig, GroupConfigError, loadGroupConfig } from '../groups';
import { usage } from './errors';

export function parseGroupBy(text: string, flag: string): GroupBy {
  if (!GROUP_BY.includes(text as GroupBy)) throw usage(`invalid ${flag} "${text}" (known: ${GROUP_BY.join(' ')})`);
  return text as GroupBy;
}

/** Reads --config FILE; a file that cannot be used is a usage error naming the line. */
export function loadGrouping(file: string): GroupConfig {
  try {
    return loadGroupConfig(file);
  } catch (err) {
    if (err instanceof GroupConfigError) throw usage(`bad config ${err.message}`);
    const e = err as NodeJS.ErrnoException;
    throw usage(`cannot read config ${file}: ${e.code ?? e.message}`);
  }
}

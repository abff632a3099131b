// --config, shared by serve, group and smem.
import { type GroupConfig, GroupConfigError, loadGroupConfig } from '../groups';
import { usage } from './errors';

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

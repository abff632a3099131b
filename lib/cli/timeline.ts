// What top, record and diff share: a sample's groups, and signed sizes.
import { type GroupSample, groupSample, type Sample } from '../diff';
import type { GroupBy } from '../groups';
import { usage } from './errors';
import { formatSize, type UnitStyle } from './render';

/** The column header of a group's name. */
export const GROUP_HEADERS: Record<GroupBy, string> = {
  name: 'Name',
  exe: 'Exe',
  user: 'User',
  cgroup: 'Cgroup',
  pod: 'Pod',
  container: 'Container',
  namespace: 'Namespace',
};

/**
 * The sample's groups: those snapshot() made when it was taken grouped that
 * way, else its processes summed here by name or user (exe and cgroup are
 * not in a sample's processes).
 */
export function groupsOf(sample: Sample, by: GroupBy): GroupSample[] {
  if (sample.groupBy === by && sample.groups) return sample.groups;
  if (by === 'name' || by === 'user') return groupSample(sample, by);
  throw usage(`--by ${by}: the sample of ${sample.time} was not grouped by ${by} (record it with --by ${by})`);
}

/** A size change with its sign: +1200, -48, 0 (kB, or human units). */
export function signedSize(bytes: number, style: UnitStyle): string {
  const text = formatSize(Math.abs(bytes), style);
  if (text === '0') return '0';
  return `${bytes < 0 ? '-' : '+'}${text}`;
}

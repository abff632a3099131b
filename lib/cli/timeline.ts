// What top, record and diff share: their options' checks, a sample's
// groups, and signed sizes.
import { type GroupSample, groupSample, type Sample } from '../diff';
import { GROUP_BY, type GroupBy } from '../groups';
import { usage } from './errors';
import { formatSize, type UnitStyle } from './render';

/** Seconds as given to -d: a number, 0 or more; returned in milliseconds. */
export function parseSeconds(text: string, option = '-d'): number {
  const s = Number(text);
  if (text.trim() === '' || !Number.isFinite(s) || s < 0) throw usage(`${option}: invalid number of seconds "${text}"`);
  return Math.round(s * 1000);
}

/** A count as given to -n: a whole number, 1 or more. */
export function parseCount(text: string | undefined, option = '-n'): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw usage(`${option}: invalid count "${text}" (a whole number, 1 or more)`);
  return Number(text);
}

/** The column header of a group's name. */
export const GROUP_HEADERS: Record<GroupBy, string> = { name: 'Name', exe: 'Exe', user: 'User', cgroup: 'Cgroup' };

export function parseGroupBy(text: string | undefined): GroupBy | undefined {
  if (text === undefined) return undefined;
  if (!GROUP_BY.includes(text as GroupBy))
    throw usage(`--by: unknown grouping "${text}" (known: ${GROUP_BY.join(' ')})`);
  return text as GroupBy;
}

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

// What top, record and diff share: their options' checks, grouping of a
// sample by name, user or cgroup, and signed sizes.
import { type GroupKey, type GroupSample, groupSample, type Sample } from '../diff';
import { usage } from './errors';
import { formatSize, type UnitStyle } from './render';

export const GROUP_KEYS: readonly GroupKey[] = ['name', 'user', 'cgroup'];

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

export function parseGroupKey(text: string | undefined): GroupKey | undefined {
  if (text === undefined) return undefined;
  if (!GROUP_KEYS.includes(text as GroupKey))
    throw usage(`--by: unknown grouping "${text}" (known: ${GROUP_KEYS.join(' ')})`);
  return text as GroupKey;
}

/** The sample's groups: those snapshot() made (groupBy) when recorded, else summed here by name or user. */
export function groupsOf(sample: Sample, by: GroupKey): GroupSample[] {
  return groupSample(sample, by);
}

/** A size change with its sign: +1200, -48, 0 (kB, or human units). */
export function signedSize(bytes: number, style: UnitStyle): string {
  const text = formatSize(Math.abs(bytes), style);
  if (text === '0') return '0';
  return `${bytes < 0 ? '-' : '+'}${text}`;
}

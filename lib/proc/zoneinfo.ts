// /proc/zoneinfo: per memory zone, the frames it spans, those present, those
// the page allocator manages, the free ones in its buddy lists and those
// parked on per-CPU lists.
import * as fs from 'node:fs';
import { withPath } from '../errors';

export interface Zone {
  node: number;
  name: string;
  startPfn: number;
  /** Frames from the zone's first to its last, holes included. */
  spanned: number;
  /** Frames of memory in the zone. */
  present: number;
  /** Frames handed to the page allocator (present less what boot kept). */
  managed: number;
  /** nr_free_pages: frames in the buddy lists. */
  freePages: number;
  /** Frames on the per-CPU lists (`count:` of every pageset): free, but not in nr_free_pages. */
  perCpuPages: number;
}

export function parseZoneinfo(text: string): Zone[] {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  const zones: Zone[] = [];
  let zone: Zone | undefined;
  for (const line of text.split('\n')) {
    const head = /^Node (\d+), zone\s+(\S+)/.exec(line);
    if (head) {
      zone = {
        node: Number(head[1]),
        name: head[2],
        startPfn: 0,
        spanned: 0,
        present: 0,
        managed: 0,
        freePages: 0,
        perCpuPages: 0,
      };
      zones.push(zone);
      continue;
    }
    if (!zone) continue;
    const m = /^\s+(spanned|present|managed|nr_free_pages|count:|start_pfn:)\s+(\d+)/.exec(line);
    if (!m) continue;
    const v = Number(m[2]);
    if (m[1] === 'spanned') zone.spanned = v;
    else if (m[1] === 'present') zone.present = v;
    else if (m[1] === 'managed') zone.managed = v;
    else if (m[1] === 'nr_free_pages') zone.freePages = v;
    else if (m[1] === 'count:') zone.perCpuPages += v;
    else zone.startPfn = v;
  }
  return zones;
}

export function readZoneinfo(): Zone[] {
  return parseZoneinfo(withPath('/proc/zoneinfo', () => fs.readFileSync('/proc/zoneinfo', 'utf8')));
}

// watch(): snapshots at an interval and what changed between them, for
// growth hunting, `pagewalk top` and `pagewalk record`. Processes that start
// or exit between two snapshots show as started or exited in the diffs;
// the figures of the rest stay exact.
import { diffSamples, type Sample, type SampleDiff, sampleOf } from './diff';
import { readMeminfo } from './proc/meminfo';
import { checkSnapshotOptions, type Snapshot, type SnapshotOptions, snapshot } from './snapshot';

export interface WatchOptions extends SnapshotOptions {
  /** Milliseconds from the start of one snapshot to the start of the next. Default 2000. */
  interval?: number;
  /** Stops the watch: the iteration ends (no error); a snapshot under way is finished and dropped. */
  signal?: AbortSignal;
  /** Stop after this many snapshots. Default: until aborted. */
  count?: number;
  /** Read /proc/meminfo with each snapshot (into `sample.meminfo`). Default true. */
  meminfo?: boolean;
}

export interface WatchStep {
  /** 0 for the first snapshot. */
  index: number;
  snapshot: Snapshot;
  /** The snapshot as a plain sample (what `pagewalk record` writes). */
  sample: Sample;
  /** The change since the previous step; null on the first. */
  sincePrevious: SampleDiff | null;
  /** The change since the first step (empty on the first). */
  sinceStart: SampleDiff;
}

function checkWatchOptions(o: WatchOptions): void {
  const { interval: _i, signal: _s, count: _c, meminfo: _m, ...snapshotOptions } = o;
  checkSnapshotOptions(snapshotOptions);
  if (o.interval !== undefined && (typeof o.interval !== 'number' || !Number.isFinite(o.interval) || o.interval < 0))
    throw new RangeError('options.interval must be a number of milliseconds, 0 or more');
  if (o.count !== undefined && (!Number.isInteger(o.count) || o.count < 1))
    throw new RangeError('options.count must be an integer of 1 or more');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw new TypeError('options.signal must be an AbortSignal');
}

/** Resolves after `ms`, or at once when the signal aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

async function* steps(options: WatchOptions): AsyncGenerator<WatchStep, void, undefined> {
  const { interval = 2000, signal, count, meminfo = true, ...snapshotOptions } = options;
  let first: Sample | undefined;
  let previous: Sample | undefined;
  let lastStart = 0;
  const grouping = snapshotOptions.groupBy;
  const groupBy = grouping === undefined ? undefined : typeof grouping === 'string' ? grouping : 'rules';
  for (let index = 0; count === undefined || index < count; index++) {
    // Paced from snapshot start to snapshot start; a consumer slower than
    // the interval gets the next one as soon as it asks.
    if (index > 0) await pause(lastStart + interval - Date.now(), signal);
    if (signal?.aborted) return;
    lastStart = Date.now();
    const time = new Date();
    // An abort cuts the snapshot short; what it measured is dropped.
    const snap = await snapshot({ ...snapshotOptions, signal });
    if (signal?.aborted) return;
    const sample = sampleOf(snap, {
      time,
      ...(meminfo ? { meminfo: readMeminfo() } : {}),
      ...(groupBy ? { groupBy, groups: snap.groups.slice(snapshotOptions.groups?.length ?? 0) } : {}),
    });
    first ??= sample;
    const step: WatchStep = {
      index,
      snapshot: snap,
      sample,
      sincePrevious: previous ? diffSamples(previous, sample) : null,
      sinceStart: diffSamples(first, sample),
    };
    previous = sample;
    yield step;
  }
}

/**
 * Snapshots every `interval` ms with their differences, as an async
 * iterator (`for await (const step of watch({ interval: 1000 }))`), or with
 * a callback, awaited before the next snapshot, and a promise that settles
 * when the watch ends. Ends on `signal` abort, after `count` snapshots, or
 * when the loop breaks; a snapshot error ends it with that error.
 */
export function watch(options?: WatchOptions): AsyncGenerator<WatchStep, void, undefined>;
export function watch(options: WatchOptions, callback: (step: WatchStep) => void | Promise<void>): Promise<void>;
export function watch(
  options: WatchOptions = {},
  callback?: (step: WatchStep) => void | Promise<void>,
): AsyncGenerator<WatchStep, void, undefined> | Promise<void> {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  checkWatchOptions(options);
  if (callback === undefined) return steps(options);
  if (typeof callback !== 'function') throw new TypeError('callback must be a function');
  return (async () => {
    for await (const step of steps(options)) await callback(step);
  })();
}

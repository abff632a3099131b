// Running asynchronous work side by side: snapshot() walks processes on the
// thread pool, as many at a time as there are CPUs to run them.
import * as os from 'node:os';

/** CPUs this process may run on (cgroup and affinity limits included, where Node knows them). */
export function cpuCount(): number {
  return os.availableParallelism ? os.availableParallelism() : os.cpus().length;
}

/** Calls fn on every item, at most `limit` calls in flight at once. */
export async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

// The RAM census as Prometheus gauges, for the exporter (`pagewalk serve
// --ram`): each category's parts, what each memory cgroup is charged for,
// and how that compares with its memory.stat.
import { Gauge, type Registry } from 'prom-client';
import { type RamCensus, type RamNode, ramCensus } from './ram';
import type { Snapshot } from './snapshot';

/** Parts of a category beyond this many are summed into one `(others)` series. */
export const RAM_MAX_PARTS = 20;

export class RamMetrics {
  readonly #bytes: Gauge;
  readonly #total: Gauge;
  readonly #memTotal: Gauge;
  readonly #charged: Gauge;
  readonly #statDifference: Gauge;
  readonly #duration: Gauge;

  constructor(registers: Registry[]) {
    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      new Gauge({ name, help, labelNames, registers });
    this.#bytes = gauge(
      'pagewalk_ram_bytes',
      "Page frames of the machine by category and part (every frame in one series: they sum to pagewalk_ram_total_bytes); part is '' for a category without parts",
      ['category', 'part'],
    );
    this.#total = gauge('pagewalk_ram_total_bytes', 'Every page frame the kernel describes (max_pfn frames)');
    this.#memTotal = gauge('pagewalk_ram_memtotal_bytes', 'MemTotal of /proc/meminfo, for the reconciliation');
    this.#charged = gauge(
      'pagewalk_cgroup_charged_bytes',
      'Frames charged to the memory cgroup alone (kpagecgroup), by kind: anon, file, shmem, kernel',
      ['cgroup', 'kind'],
    );
    this.#statDifference = gauge(
      'pagewalk_cgroup_stat_difference_bytes',
      'The census of a memory cgroup less its own memory.stat figure for the same thing (check names the two)',
      ['cgroup', 'check'],
    );
    this.#duration = gauge('pagewalk_ram_census_duration_seconds', 'How long the census behind these figures took');
  }

  /** Takes a census (splitting processes by the snapshot's groups) and publishes it. */
  async update(snap: Snapshot | undefined): Promise<RamCensus> {
    const census = await ramCensus({ snapshot: snap, processes: snap !== undefined });
    this.publish(census);
    return census;
  }

  publish(c: RamCensus): void {
    for (const g of [this.#bytes, this.#charged, this.#statDifference]) g.reset();
    for (const category of c.tree.children ?? []) {
      const parts = (category.children ?? []).filter((p) => p.bytes > 0);
      if (parts.length === 0) {
        this.#bytes.set({ category: category.name, part: '' }, category.bytes);
        continue;
      }
      const kept = [...parts].sort((a, b) => b.bytes - a.bytes).slice(0, RAM_MAX_PARTS);
      for (const p of kept) this.#bytes.set({ category: category.name, part: p.name }, p.bytes);
      const rest = parts.slice(0).filter((p) => !kept.includes(p));
      if (rest.length > 0)
        this.#bytes.set(
          { category: category.name, part: '(others)' },
          rest.reduce((s: number, p: RamNode) => s + p.bytes, 0),
        );
    }
    this.#total.set(c.total);
    this.#memTotal.set(c.reconciliation.memTotal);
    for (const g of c.cgroups) {
      const cgroup = g.path ?? `(removed, inode ${g.inode})`;
      for (const kind of ['anon', 'file', 'shmem', 'kernel'] as const) this.#charged.set({ cgroup, kind }, g[kind]);
      for (const k of g.checks) this.#statDifference.set({ cgroup, check: k.name }, k.difference);
    }
    this.#duration.set(c.elapsedMs / 1000);
  }
}

// The figures of snapshot() as Prometheus metrics, through prom-client (the
// exposition format is prom-client's, never written by hand). No HTTP here:
// `pagewalk serve` puts scrape() behind a listener, and a program that has
// its own prom-client registry can pass it in.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { callerCpuMs } from './accounting';
import { describe } from './errors';
import {
  checkGrouping,
  DEFAULT_KUBE_LOGS,
  type Grouping,
  groupNameOf,
  KUBERNETES_LABELS,
  kubeletNamesOnce,
  ProcessFacts,
} from './groups';
import { podMemoryLimit } from './kubernetes';
import { RamMetrics } from './ram-metrics';
import { type ProcessInfo, type Snapshot, type SnapshotOptions, snapshot } from './snapshot';

export interface ExporterOptions {
  /**
   * How processes form groups (the `group` label). Default 'name'. 'pod',
   * 'container' and 'namespace' add the labels namespace, pod, container.
   */
  groupBy?: Grouping;
  /** Where the kubelet's log directories are, for groupBy 'pod', 'container' and 'namespace'. Default /var/log. */
  kubeLogs?: string;
  /** A scrape reuses a snapshot taken less than this many ms ago. Default 10 000. */
  minIntervalMs?: number;
  /** Stop starting process walks after this many ms (0: no bound); the snapshot is then partial. Default 8 000. */
  maxSnapshotMs?: number;
  /** Per-process series (labels pid, name, group). Default false. */
  perProcess?: boolean;
  /** At most this many per-process series per metric: the processes with the largest PSS. Default 500. */
  maxSeries?: number;
  /** Registry to register in. Default: a new one, with prom-client's default process metrics. */
  registry?: Registry;
  /** Also the RAM census of the machine (pagewalk_ram_bytes, per-cgroup charges): a frame read per scrape. Default false. */
  ram?: boolean;
  /** Extra snapshot options (concurrency, excludeSelf). */
  snapshotOptions?: Pick<SnapshotOptions, 'concurrency' | 'excludeSelf'>;
}

type GroupFigure = 'rss' | 'pss' | 'uss' | 'swap' | 'unique' | 'shared_outside';

const GROUP_HELP: Record<GroupFigure, string> = {
  rss: 'Sum of the resident set sizes of the processes of the group (shared pages counted once per process)',
  pss: "Sum of the proportional set sizes of the group's processes (each shared page divided among its mappers)",
  uss: "Sum of the unique set sizes of the group's processes (pages each maps alone)",
  swap: "Sum of the swapped-out memory of the group's processes",
  unique: 'Memory mapped only by processes of the group, each page once: what stopping the whole group frees',
  shared_outside: 'Memory the group maps that processes outside it map too, each page once',
};

type ProcessFigure = 'rss' | 'pss' | 'uss' | 'swap';

function checkNumber(v: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v === undefined) return;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (!Number.isFinite(v) || v < min || v > max)
    throw new RangeError(`${name} must be from ${min} to ${max}, got ${v}`);
}

interface Taken {
  snap?: Snapshot;
  /** performance.now() when the snapshot began. */
  at: number;
}

export class Exporter {
  readonly registry: Registry;
  readonly #grouping: Grouping;
  readonly #kubeLogs: string;
  /** The labels a group carries besides `group`: namespace, pod, container for the Kubernetes keys. */
  readonly #kubeLabels: readonly string[];
  readonly #minIntervalMs: number;
  readonly #maxSnapshotMs: number;
  readonly #perProcess: boolean;
  readonly #maxSeries: number;
  readonly #snapshotOptions: ExporterOptions['snapshotOptions'];
  readonly #ram?: RamMetrics;
  #last?: Taken;
  #inFlight?: Promise<Taken>;

  readonly #group: Record<GroupFigure, Gauge>;
  readonly #groupProcesses: Gauge;
  readonly #groupLimit?: Gauge;
  readonly #process: Record<ProcessFigure, Gauge>;
  readonly #duration: Gauge;
  readonly #cpu: Counter;
  readonly #errors: Counter;
  readonly #gone: Counter;
  readonly #exact: Gauge;
  readonly #snapshots: Counter;
  readonly #partial: Gauge;
  readonly #partialTotal: Counter;
  readonly #skipped: Gauge;
  readonly #seriesDropped: Gauge;

  constructor(options: ExporterOptions = {}) {
    if (typeof options !== 'object' || options === null)
      throw new TypeError(`options must be an object, got ${describe(options)}`);
    if (options.groupBy !== undefined) checkGrouping(options.groupBy, 'options.groupBy');
    checkNumber(options.minIntervalMs, 'options.minIntervalMs', 0);
    checkNumber(options.maxSnapshotMs, 'options.maxSnapshotMs', 0);
    checkNumber(options.maxSeries, 'options.maxSeries', 0);
    if (options.registry !== undefined && !(options.registry instanceof Registry))
      throw new TypeError('options.registry must be a prom-client Registry');
    if (options.kubeLogs !== undefined && typeof options.kubeLogs !== 'string')
      throw new TypeError(`options.kubeLogs must be a string, got ${describe(options.kubeLogs)}`);
    this.#grouping = options.groupBy ?? 'name';
    this.#kubeLogs = options.kubeLogs ?? DEFAULT_KUBE_LOGS;
    this.#kubeLabels = (typeof this.#grouping === 'string' && KUBERNETES_LABELS[this.#grouping]) || [];
    this.#minIntervalMs = options.minIntervalMs ?? 10_000;
    this.#maxSnapshotMs = options.maxSnapshotMs ?? 8_000;
    this.#perProcess = Boolean(options.perProcess);
    this.#maxSeries = options.maxSeries ?? 500;
    this.#snapshotOptions = options.snapshotOptions;
    this.registry = options.registry ?? new Registry();
    if (!options.registry) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges that prom-client names with a counter's _total suffix:
      // `promtool check metrics` rejects them.
      for (const m of this.registry.getMetricsAsArray() as unknown[])
        if (!(m instanceof Counter) && (m as { name: string }).name.endsWith('_total'))
          this.registry.removeSingleMetric((m as { name: string }).name);
    }
    const registers = [this.registry];

    const gauge = (name: string, help: string, labelNames: string[] = []) =>
      new Gauge({ name, help, labelNames, registers });
    this.#group = Object.fromEntries(
      (Object.keys(GROUP_HELP) as GroupFigure[]).map((f) => [
        f,
        gauge(`pagewalk_group_${f}_bytes`, GROUP_HELP[f], ['group', ...this.#kubeLabels]),
      ]),
    ) as Record<GroupFigure, Gauge>;
    this.#groupProcesses = gauge('pagewalk_group_processes', 'Processes measured in the group', [
      'group',
      ...this.#kubeLabels,
    ]);
    if (this.#kubeLabels.includes('pod'))
      this.#groupLimit = gauge(
        'pagewalk_group_memory_limit_bytes',
        "The memory limit of the group's pod cgroup (of its container's, grouped by container); no series when there is none",
        ['group', ...this.#kubeLabels],
      );
    const processLabels = ['pid', 'name', 'group', ...this.#kubeLabels];
    this.#process = {
      rss: gauge('pagewalk_process_rss_bytes', 'Resident set size of the process', processLabels),
      pss: gauge('pagewalk_process_pss_bytes', 'Proportional set size of the process', processLabels),
      uss: gauge('pagewalk_process_uss_bytes', 'Unique set size of the process: what its exit frees', processLabels),
      swap: gauge('pagewalk_process_swap_bytes', 'Swapped-out memory of the process', processLabels),
    };
    if (options.ram) this.#ram = new RamMetrics(registers);
    this.#duration = gauge('pagewalk_scrape_duration_seconds', 'How long the snapshot behind these figures took');
    this.#cpu = new Counter({
      name: 'pagewalk_scrape_cpu_seconds_total',
      help: "CPU time the snapshots took, every thread of theirs together (the snapshot's timings.cpu), and their publishing",
      registers,
    });
    this.#errors = new Counter({
      name: 'pagewalk_scrape_errors_total',
      help: 'Snapshots that failed (no group figures were exported for them)',
      registers,
    });
    this.#gone = new Counter({
      name: 'pagewalk_processes_gone_total',
      help: 'Processes that exited, changed or could not be read while a snapshot measured them',
      registers,
    });
    this.#exact = gauge(
      'pagewalk_exact',
      '1 when the figures come from pagemap (kernel-exact), 0 when degraded to smaps_rollup for want of privilege',
    );
    this.#snapshots = new Counter({ name: 'pagewalk_snapshots_total', help: 'Snapshots taken', registers });
    this.#partial = gauge(
      'pagewalk_snapshot_partial',
      '1 when the snapshot behind these figures was cut short by --max-scrape-seconds (groups it missed members of are left out)',
    );
    this.#partialTotal = new Counter({
      name: 'pagewalk_partial_snapshots_total',
      help: 'Snapshots cut short by --max-scrape-seconds',
      registers,
    });
    this.#skipped = gauge(
      'pagewalk_snapshot_skipped_processes',
      'Processes the last snapshot did not measure because it was cut short',
    );
    this.#seriesDropped = gauge(
      'pagewalk_process_series_dropped',
      'Processes left without per-process series by --max-series in the last snapshot',
    );
  }

  /** The Content-Type of scrape()'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, from a snapshot younger than minIntervalMs (taken now if there is none). */
  async scrape(): Promise<string> {
    await this.#fresh();
    return this.registry.metrics();
  }

  /** The snapshot behind the current figures, if the last one succeeded. */
  get lastSnapshot(): Snapshot | undefined {
    return this.#last?.snap;
  }

  #fresh(): Promise<Taken> {
    // Concurrent scrapes wait for the one snapshot in flight.
    if (this.#inFlight) return this.#inFlight;
    const last = this.#last;
    if (last && performance.now() - last.at < this.#minIntervalMs) return Promise.resolve(last);
    this.#inFlight = this.#take().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #take(): Promise<Taken> {
    const at = performance.now();
    const cpuBegan = callerCpuMs();
    const grouping = this.#grouping;
    // Rules leave unmatched processes out: they need not be walked at all.
    const kubeletNames = kubeletNamesOnce(this.#kubeLogs);
    const filter =
      typeof grouping === 'string'
        ? (p: ProcessInfo) => !p.kernelThread
        : (p: ProcessInfo) => !p.kernelThread && groupNameOf(grouping, new ProcessFacts(p, kubeletNames)) !== undefined;
    const signal = this.#maxSnapshotMs > 0 ? AbortSignal.timeout(this.#maxSnapshotMs) : undefined;
    let snap: Snapshot | undefined;
    try {
      snap = await snapshot({ ...this.#snapshotOptions, filter, groupBy: grouping, kubeLogs: this.#kubeLogs, signal });
    } catch {
      this.#errors.inc();
    }
    this.#snapshots.inc();
    this.#duration.set((performance.now() - at) / 1000);
    const published = callerCpuMs();
    this.#publish(snap);
    if (this.#ram) {
      try {
        await this.#ram.update(snap);
      } catch {
        this.#errors.inc();
      }
    }
    // The snapshot's own bill (its walk and tally threads and this thread
    // while it ran), then this thread's publishing (the RAM census's
    // included); a failed snapshot: this thread's time alone.
    const cpuMs = (snap ? snap.timings.cpu : published - cpuBegan) + (callerCpuMs() - published);
    this.#cpu.inc(cpuMs / 1000);
    return (this.#last = { snap, at });
  }

  #publish(snap: Snapshot | undefined): void {
    // Series of groups and processes that are gone must go too.
    for (const g of Object.values(this.#group)) g.reset();
    this.#groupProcesses.reset();
    this.#groupLimit?.reset();
    for (const g of Object.values(this.#process)) g.reset();
    if (!snap) return;
    this.#gone.inc(snap.gone.length);
    this.#exact.set(snap.source === 'pagemap' ? 1 : 0);
    const partial = snap.skipped.length > 0;
    this.#partial.set(partial ? 1 : 0);
    if (partial) this.#partialTotal.inc();
    this.#skipped.set(snap.skipped.length);
    const groupOfPid = new Map<number, Record<string, string>>();
    for (const g of snap.groups) {
      const labels = { group: g.name, ...g.labels };
      for (const pid of g.pids) groupOfPid.set(pid, labels);
      // A group missing members would show a drop that did not happen: left out instead.
      if (g.skipped.length > 0 || g.pids.length === 0) continue;
      this.#group.rss.set(labels, g.totals.rss);
      this.#group.pss.set(labels, g.totals.pss);
      this.#group.uss.set(labels, g.totals.uss);
      this.#group.swap.set(labels, g.totals.swap);
      // Group-unique figures need CAP_SYS_ADMIN: without it (null) there is no series rather than a wrong one.
      if (g.only !== null) this.#group.unique.set(labels, g.only);
      if (g.sharedOutside !== null) this.#group.shared_outside.set(labels, g.sharedOutside);
      this.#groupProcesses.set(labels, g.pids.length);
      if (this.#groupLimit && g.labels?.pod) {
        // Every member is in the same pod (and container): any member tells its limit.
        // A few are tried, in case the first exited since it was measured.
        const level = g.labels.container ? 'container' : 'pod';
        for (const pid of g.pids.slice(0, 3)) {
          const limit = podMemoryLimit(pid, level);
          if (limit === undefined) continue;
          this.#groupLimit.set(labels, limit);
          break;
        }
      }
    }
    if (!this.#perProcess) {
      this.#seriesDropped.set(0);
      return;
    }
    const grouped = snap.processes.filter((p) => groupOfPid.has(p.pid));
    const kept = [...grouped].sort((a, b) => b.pss - a.pss).slice(0, this.#maxSeries);
    this.#seriesDropped.set(grouped.length - kept.length);
    for (const p of kept) {
      const labels = { pid: String(p.pid), name: p.info.name, ...groupOfPid.get(p.pid) };
      this.#process.rss.set(labels, p.rss);
      this.#process.pss.set(labels, p.pss);
      this.#process.uss.set(labels, p.uss);
      this.#process.swap.set(labels, p.swap);
    }
  }
}

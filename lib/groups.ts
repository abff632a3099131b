// Which group a process belongs to: by one of its facts (name, exe, user,
// memory cgroup) or by an ordered list of rules read from YAML, as
// ncabatoff/process-exporter does it: the first rule that matches takes the
// process. The same grouping serves snapshot({ groupBy }), `pagewalk group
// --by`, `pagewalk smem --group-by`, `top`, `record` and `pagewalk serve`.
// Kubernetes keys (pod, container, namespace) name a process from its cgroup
// and the kubelet's log directories (see kubernetes.ts).
import * as fs from 'node:fs';
import type { Node, YAMLMap } from 'yaml';
import { describe } from './errors';
import { type KubeletNames, type PodIdentity, podIdentity, readKubeletNames } from './kubernetes';
import { type CgroupLine, memoryCgroup, parseCgroupFile } from './proc/cgroup';
import { readExe } from './proc/exe';
import { readProcFile } from './proc/read';
import type { ProcessInfo } from './snapshot';

export type GroupBy = 'name' | 'exe' | 'user' | 'cgroup' | 'pod' | 'container' | 'namespace';
export const GROUP_BY: readonly GroupBy[] = ['name', 'exe', 'user', 'cgroup', 'pod', 'container', 'namespace'];

/** The Kubernetes grouping keys, and the labels each gives its groups (besides the joined name). */
export const KUBERNETES_LABELS: Readonly<Partial<Record<GroupBy, readonly string[]>>> = {
  namespace: ['namespace'],
  pod: ['namespace', 'pod'],
  container: ['namespace', 'pod', 'container'],
};

/** The default root of the kubelet's log directories (`pods/`, `containers/`). */
export const DEFAULT_KUBE_LOGS = '/var/log';

/** The facts a rule can match, in the order `{{match}}` looks for a capture. */
export type MatchField = 'name' | 'exe' | 'cmdline' | 'user' | 'cgroup' | 'namespace' | 'pod' | 'container';
const MATCH_FIELDS: readonly MatchField[] = [
  'name',
  'exe',
  'cmdline',
  'user',
  'cgroup',
  'namespace',
  'pod',
  'container',
];
const PLACEHOLDERS = new Set(['name', 'exe', 'user', 'cgroup', 'namespace', 'pod', 'container', 'match']);

export interface GroupRule {
  /** The group's name, a template: {{name}} {{exe}} {{user}} {{cgroup}} {{match}}. */
  name: string;
  /** Every regular expression given must match; none given matches every process. */
  match: Partial<Record<MatchField, RegExp>>;
}

export interface GroupConfig {
  /** Tried in order; a process no rule matches is in no group. */
  groups: GroupRule[];
}

/** A grouping: one fact of each process, or rules. */
export type Grouping = GroupBy | GroupConfig;

/** A configuration file that cannot be used, with the line at fault (1-based). */
export class GroupConfigError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'GroupConfigError';
  }
}

/**
 * The kubelet's names, read once for every process of a snapshot that asks
 * (and not at all when none does).
 */
export function kubeletNamesOnce(root: string = DEFAULT_KUBE_LOGS): () => KubeletNames {
  let names: KubeletNames | undefined;
  return () => {
    names ??= readKubeletNames(root);
    return names;
  };
}

/**
 * The facts grouping needs of one process. exe and cgroup cost a system call
 * each and are read only when asked for, once. `kubeletNames` gives the
 * names for the Kubernetes keys (default: read from /var/log, once per
 * ProcessFacts: pass one kubeletNamesOnce() to every process of a snapshot).
 */
export class ProcessFacts {
  private exeValue?: string;
  private linesValue?: CgroupLine[];
  private cgroupValue?: { path: string; name: string };
  private podValue?: PodIdentity | null;
  private readonly kubeletNames: () => KubeletNames;

  constructor(
    readonly info: ProcessInfo,
    kubeletNames?: () => KubeletNames,
  ) {
    this.kubeletNames = kubeletNames ?? kubeletNamesOnce();
  }

  /** The executable's path; `[name]` when it cannot be read (kernel threads, other users' processes without privilege). */
  get exe(): string {
    if (this.exeValue === undefined) {
      try {
        // A replaced binary reads "/usr/bin/x (deleted)": still the same program.
        this.exeValue = readExe(this.info.pid).replace(/ \(deleted\)$/, '');
      } catch {
        this.exeValue = `[${this.info.name}]`;
      }
    }
    return this.exeValue;
  }

  /** The lines of /proc/PID/cgroup; none once the process has exited. */
  private get cgroupLines(): CgroupLine[] {
    if (this.linesValue === undefined) {
      try {
        this.linesValue = parseCgroupFile(readProcFile(this.info.pid, 'cgroup'));
      } catch {
        this.linesValue = []; // exited meanwhile
      }
    }
    return this.linesValue;
  }

  /** The memory cgroup: its path and its short name (see shortCgroupName). */
  get cgroup(): { path: string; name: string } {
    if (this.cgroupValue === undefined) {
      const found = memoryCgroup(this.cgroupLines);
      this.cgroupValue = found ? { path: found.path, name: found.name } : { path: '', name: '(none)' };
    }
    return this.cgroupValue;
  }

  /**
   * The pod (and container) of the process, named by the kubelet's log
   * directories; undefined when it is in no pod they name. The memory
   * cgroup's path is tried first, then the other hierarchies' (on a hybrid
   * host the pod may be made in the v2 one only).
   */
  get pod(): PodIdentity | undefined {
    if (this.podValue === undefined) {
      const lines = this.cgroupLines;
      const memory = memoryCgroup(lines);
      const paths = [...(memory ? [memory.path] : []), ...lines.map((l) => l.path)];
      let found: PodIdentity | undefined;
      for (const p of paths) {
        found = podIdentity(p, this.kubeletNames());
        if (found) break;
      }
      this.podValue = found ?? null;
    }
    return this.podValue ?? undefined;
  }

  /**
   * The text a matcher is tested against; undefined for the Kubernetes names
   * of a process in no named pod (or, for container, in no named container),
   * which no expression matches.
   */
  field(f: MatchField): string | undefined {
    switch (f) {
      case 'namespace':
        return this.pod?.namespace;
      case 'pod':
        return this.pod?.pod;
      case 'container':
        return this.pod?.container;
      case 'name':
        return this.info.name;
      case 'exe':
        return this.exe;
      case 'cmdline':
        return this.info.command;
      case 'user':
        return this.info.user;
      case 'cgroup':
        return this.cgroup.path;
    }
  }
}

export function checkGrouping(g: unknown, name = 'groupBy'): asserts g is Grouping {
  if (typeof g === 'string') {
    if (!GROUP_BY.includes(g as GroupBy))
      throw new RangeError(`${name} must be one of ${GROUP_BY.join(', ')}, got ${g}`);
    return;
  }
  if (!g || typeof g !== 'object' || !Array.isArray((g as GroupConfig).groups)) {
    throw new TypeError(`${name} must be ${GROUP_BY.join(', ')} or a GroupConfig, got ${describe(g)}`);
  }
  for (const [i, r] of (g as GroupConfig).groups.entries()) {
    if (!r || typeof r.name !== 'string') throw new TypeError(`${name}.groups[${i}].name must be a string`);
    if (!r.match || typeof r.match !== 'object') throw new TypeError(`${name}.groups[${i}].match must be an object`);
    for (const [f, re] of Object.entries(r.match)) {
      if (!MATCH_FIELDS.includes(f as MatchField))
        throw new RangeError(`${name}.groups[${i}].match.${f} is not a fact`);
      if (!(re instanceof RegExp)) throw new TypeError(`${name}.groups[${i}].match.${f} must be a RegExp`);
    }
  }
}

function render(template: string, facts: ProcessFacts, capture: string): string {
  const out = template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, key: string) => {
    switch (key) {
      case 'name':
        return facts.info.name;
      case 'exe':
        return facts.exe;
      case 'user':
        return facts.info.user;
      case 'cgroup':
        return facts.cgroup.name;
      case 'namespace':
      case 'pod':
      case 'container':
        return facts.pod?.[key] ?? '';
      default:
        return capture;
    }
  });
  // An empty group name would be an absent label in Prometheus.
  return out || template;
}

function ruleName(rule: GroupRule, facts: ProcessFacts): string | undefined {
  let capture: string | undefined;
  for (const f of MATCH_FIELDS) {
    const re = rule.match[f];
    if (!re) continue;
    // A global or sticky expression keeps state between calls: use a fresh copy.
    const text = facts.field(f);
    if (text === undefined) return undefined;
    const m = (re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re).exec(text);
    if (!m) return undefined;
    if (capture === undefined && m.length > 1 && m[1] !== undefined) capture = m[1];
  }
  return render(rule.name, facts, capture ?? '');
}

/** A process's group: its name, and for the Kubernetes keys the names it is made of. */
export interface GroupOf {
  name: string;
  /** namespace (and pod, and container) for a process in a named pod; absent otherwise. */
  labels?: Record<string, string>;
}

/**
 * The Kubernetes group of a process: `namespace`, `namespace/pod`, or
 * `namespace/pod/container` (`namespace/pod` again, with an empty container
 * label, for a process of the pod outside every named container: the
 * sandbox's pause process). A process in no named pod keeps its cgroup
 * group: nothing is guessed.
 */
function kubernetesGroup(by: 'pod' | 'container' | 'namespace', facts: ProcessFacts): GroupOf {
  const id = facts.pod;
  if (!id) return { name: facts.cgroup.name };
  if (by === 'namespace') return { name: id.namespace, labels: { namespace: id.namespace } };
  const pod = { name: `${id.namespace}/${id.pod}`, labels: { namespace: id.namespace, pod: id.pod } };
  if (by === 'pod') return pod;
  const container = id.container ?? '';
  return {
    name: container ? `${pod.name}/${container}` : pod.name,
    labels: { ...pod.labels, container },
  };
}

/** The group of a process under a grouping, with its labels; undefined when rules leave it out. */
export function processGroup(grouping: Grouping, facts: ProcessFacts): GroupOf | undefined {
  if (typeof grouping === 'string') {
    switch (grouping) {
      case 'name':
        return { name: facts.info.name };
      case 'exe':
        return { name: facts.exe };
      case 'user':
        return { name: facts.info.user };
      case 'cgroup':
        return { name: facts.cgroup.name };
      case 'pod':
      case 'container':
      case 'namespace':
        return kubernetesGroup(grouping, facts);
    }
  }
  for (const rule of grouping.groups) {
    const name = ruleName(rule, facts);
    if (name !== undefined) return { name };
  }
  return undefined;
}

/** The group of a process under a grouping; undefined when rules leave it out. */
export function groupNameOf(grouping: Grouping, facts: ProcessFacts): string | undefined {
  return processGroup(grouping, facts)?.name;
}

// ---- The YAML configuration ----

/**
 * Reads a group configuration:
 *
 *     groups:
 *       - name: postgres            # the group's name (a template)
 *         match:
 *           exe: ^/usr/lib/postgresql/
 *       - name: "container {{cgroup}}"
 *         match: { cgroup: '^/(docker|kubepods)' }
 *       - name: "{{name}}"          # no match: every other process
 *
 * Errors name the line (GroupConfigError).
 */
export function parseGroupConfig(text: string, file = 'config'): GroupConfig {
  if (typeof text !== 'string') throw new TypeError(`text must be a string, got ${describe(text)}`);
  // Loaded here, not with the library: yaml is 72 modules that only a configuration needs.
  const { isMap, isScalar, isSeq, LineCounter, parseDocument } = require('yaml') as typeof import('yaml');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: Node | null | undefined, fallback = 1) =>
    node?.range ? lineCounter.linePos(node.range[0]).line : fallback;
  const fail = (node: Node | null | undefined, reason: string): never => {
    throw new GroupConfigError(file, lineOf(node), reason);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new GroupConfigError(file, lineCounter.linePos(e.pos[0]).line, e.message.split('\n')[0]);
  }
  const top = doc.contents;
  if (!isMap(top)) return fail(top, 'the file must be a mapping with a "groups" list');
  checkKeys(isScalar, top, ['groups'], fail);
  const list = top.get('groups', true);
  if (!isSeq(list)) return fail((list as Node | undefined) ?? top, '"groups" must be a list of groups');
  const groups: GroupRule[] = [];
  for (const item of list.items) {
    const node = item as Node;
    if (!isMap(node)) return fail(node, 'each group must be a mapping with "name" and optionally "match"');
    checkKeys(isScalar, node, ['name', 'match'], fail);
    const nameNode = node.get('name', true) as Node | undefined;
    if (!isScalar(nameNode) || typeof nameNode.value !== 'string' || !nameNode.value)
      return fail(
        nameNode ?? node,
        `a group needs a "name" (text; ${[...PLACEHOLDERS].map((p) => `{{${p}}}`).join(' ')})`,
      );
    const name = nameNode.value as string;
    for (const m of name.matchAll(/\{\{\s*(\w*)\s*\}\}/g)) {
      if (!PLACEHOLDERS.has(m[1])) fail(nameNode, `unknown placeholder {{${m[1]}}} in the name`);
    }
    const match: Partial<Record<MatchField, RegExp>> = {};
    const matchNode = node.get('match', true) as Node | undefined;
    if (matchNode !== undefined) {
      if (!isMap(matchNode)) return fail(matchNode, `"match" must be a mapping of ${MATCH_FIELDS.join(', ')}`);
      checkKeys(isScalar, matchNode, MATCH_FIELDS, fail);
      for (const pair of matchNode.items) {
        const field = (pair.key as { value: MatchField }).value;
        const v = pair.value as Node | null;
        if (!isScalar(v) || (typeof v.value !== 'string' && typeof v.value !== 'number'))
          return fail(v ?? (pair.key as Node), `match.${field} must be a regular expression (text)`);
        try {
          match[field] = new RegExp(String(v.value));
        } catch (err) {
          fail(v, `match.${field}: ${(err as Error).message}`);
        }
      }
    }
    groups.push({ name, match });
  }
  return { groups };
}

function checkKeys(
  isScalar: typeof import('yaml').isScalar,
  map: YAMLMap,
  allowed: readonly string[],
  fail: (node: Node | null | undefined, reason: string) => never,
): void {
  for (const pair of map.items) {
    const key = pair.key as Node;
    const k = isScalar(key) ? key.value : undefined;
    if (typeof k !== 'string' || !allowed.includes(k))
      fail(key, `unknown key ${JSON.stringify(k ?? String(key))}; expected ${allowed.join(', ')}`);
  }
}

/** Reads and parses a group configuration file. */
export function loadGroupConfig(file: string): GroupConfig {
  if (typeof file !== 'string') throw new TypeError(`file must be a string, got ${describe(file)}`);
  return parseGroupConfig(fs.readFileSync(file, 'utf8'), file);
}

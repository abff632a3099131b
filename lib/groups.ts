// Which group a process belongs to: by one of its facts (name, exe, user,
// memory cgroup) or by an ordered list of rules read from YAML, as
// ncabatoff/process-exporter does it: the first rule that matches takes the
// process. The same grouping serves snapshot({ groupBy }), `pagewalk group
// --by`, `pagewalk smem --cgroup` and `pagewalk serve`.
import * as fs from 'node:fs';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLMap } from 'yaml';
import { describe } from './errors';
import { readMemoryCgroup } from './proc/cgroup';
import { readExe } from './proc/exe';
import type { ProcessInfo } from './snapshot';

export type GroupBy = 'name' | 'exe' | 'user' | 'cgroup';
export const GROUP_BY: readonly GroupBy[] = ['name', 'exe', 'user', 'cgroup'];

/** The facts a rule can match, in the order `{{match}}` looks for a capture. */
export type MatchField = 'name' | 'exe' | 'cmdline' | 'user' | 'cgroup';
const MATCH_FIELDS: readonly MatchField[] = ['name', 'exe', 'cmdline', 'user', 'cgroup'];
const PLACEHOLDERS = new Set(['name', 'exe', 'user', 'cgroup', 'match']);

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
 * The facts grouping needs of one process. exe and cgroup cost a system call
 * each and are read only when asked for, once.
 */
export class ProcessFacts {
  private exeValue?: string;
  private cgroupValue?: { path: string; name: string };

  constructor(readonly info: ProcessInfo) {}

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

  /** The memory cgroup: its path and its short name (see shortCgroupName). */
  get cgroup(): { path: string; name: string } {
    if (this.cgroupValue === undefined) {
      let found: { path: string; name: string } | undefined;
      try {
        found = readMemoryCgroup(this.info.pid);
      } catch {
        // exited meanwhile
      }
      this.cgroupValue = found ?? { path: '', name: '(none)' };
    }
    return this.cgroupValue;
  }

  /** The text a matcher is tested against. */
  field(f: MatchField): string {
    switch (f) {
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
    const m = (re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re).exec(facts.field(f));
    if (!m) return undefined;
    if (capture === undefined && m.length > 1 && m[1] !== undefined) capture = m[1];
  }
  return render(rule.name, facts, capture ?? '');
}

/** The group of a process under a grouping; undefined when rules leave it out. */
export function groupNameOf(grouping: Grouping, facts: ProcessFacts): string | undefined {
  if (typeof grouping === 'string') {
    switch (grouping) {
      case 'name':
        return facts.info.name;
      case 'exe':
        return facts.exe;
      case 'user':
        return facts.info.user;
      case 'cgroup':
        return facts.cgroup.name;
    }
  }
  for (const rule of grouping.groups) {
    const name = ruleName(rule, facts);
    if (name !== undefined) return name;
  }
  return undefined;
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
  checkKeys(top, ['groups'], fail);
  const list = top.get('groups', true);
  if (!isSeq(list)) return fail((list as Node | undefined) ?? top, '"groups" must be a list of groups');
  const groups: GroupRule[] = [];
  for (const item of list.items) {
    const node = item as Node;
    if (!isMap(node)) return fail(node, 'each group must be a mapping with "name" and optionally "match"');
    checkKeys(node, ['name', 'match'], fail);
    const nameNode = node.get('name', true) as Node | undefined;
    if (!isScalar(nameNode) || typeof nameNode.value !== 'string' || !nameNode.value)
      return fail(nameNode ?? node, 'a group needs a "name" (text; {{name}} {{exe}} {{user}} {{cgroup}} {{match}})');
    const name = nameNode.value as string;
    for (const m of name.matchAll(/\{\{\s*(\w*)\s*\}\}/g)) {
      if (!PLACEHOLDERS.has(m[1])) fail(nameNode, `unknown placeholder {{${m[1]}}} in the name`);
    }
    const match: Partial<Record<MatchField, RegExp>> = {};
    const matchNode = node.get('match', true) as Node | undefined;
    if (matchNode !== undefined) {
      if (!isMap(matchNode)) return fail(matchNode, `"match" must be a mapping of ${MATCH_FIELDS.join(', ')}`);
      checkKeys(matchNode, MATCH_FIELDS, fail);
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

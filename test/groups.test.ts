// Grouping without the kernel: /proc/PID/cgroup text of every layout, the
// names container runtimes and systemd give cgroups, and the YAML rules.
import { describe, expect, it } from 'vitest';
import {
  GroupConfigError,
  groupNameOf,
  memoryCgroup,
  ProcessFacts,
  type ProcessInfo,
  parseCgroupFile,
  parseGroupConfig,
  readMemoryCgroup,
  shortCgroupName,
} from '../lib/index';

const ID = 'a3f1c0de5b7e9d2f4c6a8b0e1d3f5a7c9e2b4d6f8a0c1e3d5f7b9a2c4e6d8f0b';

describe('parseCgroupFile / memoryCgroup', () => {
  it('reads the single line of cgroup v2', () => {
    const lines = parseCgroupFile('0::/system.slice/nginx.service\n');
    expect(lines).toEqual([{ id: 0, controllers: [], path: '/system.slice/nginx.service' }]);
    expect(memoryCgroup(lines)).toEqual({ path: '/system.slice/nginx.service', version: 2, name: 'nginx.service' });
  });

  it('takes the memory controller line under v1 and hybrid setups, not the v2 or name=systemd lines', () => {
    // This machine's own /proc/self/cgroup layout: hybrid, memory on v1.
    const hybrid = [
      '9:name=systemd:/',
      '8:pids:/',
      '4:memory:/process_api/88143edbd2de9219fee14594f4ef19b6',
      '3:cpuset:/',
      '1:cpu:/',
      '0::/',
    ].join('\n');
    expect(memoryCgroup(parseCgroupFile(hybrid))).toEqual({
      path: '/process_api/88143edbd2de9219fee14594f4ef19b6',
      version: 1,
      name: '/process_api/88143edbd2de9219fee14594f4ef19b6',
    });
    const v1 = `12:cpu,cpuacct:/docker/${ID}\n11:memory:/docker/${ID}\n1:name=systemd:/docker/${ID}\n`;
    expect(memoryCgroup(parseCgroupFile(v1))).toEqual({ path: `/docker/${ID}`, version: 1, name: ID.slice(0, 12) });
  });

  it('keeps colons inside the path and rejects lines that are not cgroup lines', () => {
    expect(parseCgroupFile('0::/odd:name/x')[0].path).toBe('/odd:name/x');
    expect(() => parseCgroupFile('garbage')).toThrow(RangeError);
    expect(() => parseCgroupFile('x:memory:/')).toThrow(RangeError);
    expect(() => parseCgroupFile(3 as unknown as string)).toThrow(TypeError);
  });

  it('says there is no memory cgroup when no hierarchy has it', () => {
    expect(memoryCgroup(parseCgroupFile('3:cpu:/a\n1:name=systemd:/\n'))).toBeUndefined();
  });
});

describe('shortCgroupName', () => {
  it.each([
    [`/system.slice/docker-${ID}.scope`, ID.slice(0, 12)],
    [`/docker/${ID}`, ID.slice(0, 12)],
    [
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f2a7c1e_44d3.slice/cri-containerd-${ID}.scope`,
      ID.slice(0, 12),
    ],
    [`/kubepods/besteffort/pod0f2a7c1e-44d3-4b5e-9a1b-2c3d4e5f6a7b/${ID}`, ID.slice(0, 12)],
    [`/kubepods.slice/kubepods-pod1.slice/crio-${ID}.scope`, ID.slice(0, 12)],
    [`/machine.slice/libpod-${ID}.scope/container`, ID.slice(0, 12)],
    [`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, ID.slice(0, 12)],
    [`/machine.slice/libpod-conmon-${ID}.scope`, `conmon-${ID.slice(0, 12)}`],
    [`/system.slice/nerdctl-${ID}.scope`, ID.slice(0, 12)],
    ['/system.slice/nginx.service', 'nginx.service'],
    ['/user.slice/user-1000.slice/session-3.scope', 'session-3.scope'],
    ['/system.slice/system-getty.slice/getty@tty1.service', 'getty@tty1.service'],
    ['/system.slice/docker\\x2dcompose.service', 'docker-compose.service'],
    ['/user.slice', 'user.slice'],
    ['/init.scope', 'init.scope'],
    ['/', '/'],
    ['', '/'],
    ['/process_api/88143edbd2de9219fee14594f4ef19b6', '/process_api/88143edbd2de9219fee14594f4ef19b6'],
    // Not a container id: 63 hex digits.
    [`/docker/${ID.slice(1)}`, `/docker/${ID.slice(1)}`],
  ])('%s -> %s', (path, name) => {
    expect(shortCgroupName(path)).toBe(name);
  });

  it('names a container nested in another container by the inner one', () => {
    const inner = 'f'.repeat(64);
    expect(shortCgroupName(`/system.slice/docker-${ID}.scope/docker/${inner}`)).toBe('ffffffffffff');
  });
});

function info(over: Partial<ProcessInfo>): ProcessInfo {
  return {
    pid: process.pid,
    ppid: 1,
    name: 'postgres',
    command: 'postgres: writer',
    uid: 0,
    user: 'root',
    kernelThread: false,
    startTime: 1,
    ...over,
  };
}

describe('parseGroupConfig', () => {
  const config = parseGroupConfig(
    [
      'groups:',
      '  - name: "db {{match}}"',
      '    match:',
      '      name: ^postgres$',
      '      cmdline: "^postgres: (\\\\w+)"',
      '  - name: "{{user}}/{{name}}"',
      '    match: { user: ^www-data$ }',
      '  - name: web',
      '    match:',
      '      cmdline: nginx',
    ].join('\n'),
  );

  it('takes the first group that matches, with {{match}} the first capture', () => {
    expect(groupNameOf(config, new ProcessFacts(info({})))).toBe('db writer');
    expect(groupNameOf(config, new ProcessFacts(info({ name: 'php', user: 'www-data', command: 'nginx' })))).toBe(
      'www-data/php',
    );
    expect(groupNameOf(config, new ProcessFacts(info({ name: 'nginx', command: 'nginx: worker' })))).toBe('web');
  });

  it('leaves out processes that match nothing, unless a last group without match takes them', () => {
    expect(groupNameOf(config, new ProcessFacts(info({ name: 'sshd', command: 'sshd' })))).toBeUndefined();
    const rest = parseGroupConfig('groups:\n  - name: "{{name}}"\n');
    expect(groupNameOf(rest, new ProcessFacts(info({ name: 'sshd' })))).toBe('sshd');
  });

  it('fills {{exe}} and {{cgroup}} from /proc for a live process', () => {
    const c = parseGroupConfig('groups:\n  - name: "{{exe}} in {{cgroup}}"\n    match: { exe: node }\n');
    const name = groupNameOf(c, new ProcessFacts(info({})));
    expect(name).toBe(`${process.execPath} in ${readMemoryCgroup(process.pid)?.name}`);
  });

  it.each([
    ['groups: [', 1, /flow sequence|Missing|Unexpected/i],
    ['groups:\n  - name: a\n    match:\n      comm: x\n', 4, /unknown key "comm"/],
    ['groups:\n  - name: a\n    match:\n      exe: "("\n', 4, /match.exe: Invalid regular expression/],
    ['groups:\n  - match: { name: x }\n', 2, /needs a "name"/],
    ['groups:\n  - name: "{{pid}}"\n', 2, /unknown placeholder \{\{pid\}\}/],
    ['process_names:\n  - name: x\n', 1, /unknown key "process_names"/],
    ['groups: 3\n', 1, /must be a list/],
    ['- name: x\n', 1, /must be a mapping/],
    ['groups:\n  - name: a\n  - name: b\n    name: c\n', 4, /unique|duplicate/i],
  ])('rejects %j naming line %d', (text, line, reason) => {
    let err: unknown;
    try {
      parseGroupConfig(text, 'groups.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GroupConfigError);
    expect((err as GroupConfigError).line).toBe(line);
    expect((err as Error).message).toMatch(new RegExp(`^groups\\.yaml:${line}: `));
    expect((err as Error).message).toMatch(reason);
  });
});

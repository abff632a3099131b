// Pod and container identity without Kubernetes: every cgroup path form the
// kubelet and the runtimes make (real paths, from the reports cited), the
// kubelet's log directory and symlink names, and a log tree written here.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type KubeletNames,
  memoryMounts,
  parseCgroupFile,
  parseContainerLogName,
  parsePodCgroup,
  parsePodLogDir,
  podIdentity,
  readKubeletNames,
} from '../lib/index';

interface Form {
  form: string;
  /** Where the path was seen. */
  source: string;
  path: string;
  podUid: string;
  containerId?: string;
  qos: 'guaranteed' | 'burstable' | 'besteffort';
  podPath?: string;
  containerPath?: string;
}

const FORMS: Form[] = [
  {
    form: 'systemd driver, burstable, containerd',
    source: 'netdata/netdata#4868',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod03f3f104_3215_44f2_9686_d4dd1f05a7ed.slice/cri-containerd-09d185410c4e25236cc24717f881589bb0978b24eafd101624e627a4dd8d3439.scope',
    podUid: '03f3f104-3215-44f2-9686-d4dd1f05a7ed',
    containerId: '09d185410c4e25236cc24717f881589bb0978b24eafd101624e627a4dd8d3439',
    qos: 'burstable',
    podPath:
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod03f3f104_3215_44f2_9686_d4dd1f05a7ed.slice',
    containerPath:
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod03f3f104_3215_44f2_9686_d4dd1f05a7ed.slice/cri-containerd-09d185410c4e25236cc24717f881589bb0978b24eafd101624e627a4dd8d3439.scope',
  },
  {
    form: 'systemd driver, burstable, static pod (32-hex UID)',
    source: 'netdata/netdata#4868',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod187bff14cccb94f179e943eacce55bb3.slice/cri-containerd-c203a2647ef1ad78e990157c50331f3b6ef0b03336cf08535d6bf7faa5421415.scope',
    podUid: '187bff14cccb94f179e943eacce55bb3',
    containerId: 'c203a2647ef1ad78e990157c50331f3b6ef0b03336cf08535d6bf7faa5421415',
    qos: 'burstable',
  },
  {
    form: 'systemd driver, besteffort, CRI-O',
    source: 'kubernetes/minikube#11280 (under a kind node: /docker/<id>/kubepods.slice)',
    path: '/docker/d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c.scope',
    podUid: '2ca4a155-3599-498d-bb9d-4446693fa3ea',
    containerId: '358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c',
    qos: 'besteffort',
  },
  {
    form: 'systemd driver, burstable, CRI-O',
    source: 'opencontainers/runc#4620',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poda5c1f8d5_1919_434d_add7_4afaafdaef89.slice/crio-5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c.scope',
    podUid: 'a5c1f8d5-1919-434d-add7-4afaafdaef89',
    containerId: '5eed917563583925ffdbd40a64efb2aaffe58638e57add8becaf460fe74f5b1c',
    qos: 'burstable',
  },
  {
    form: 'systemd driver, burstable, Docker',
    source: 'lxc/lxc#3890',
    path: '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7d4424e6_bb13_42f4_a47a_45a4828bf54d.slice/docker-d0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98.scope',
    podUid: '7d4424e6-bb13-42f4-a47a-45a4828bf54d',
    containerId: 'd0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98',
    qos: 'burstable',
  },
  {
    form: 'systemd driver, besteffort, Docker',
    source: 'kontena/pharos-cluster#440',
    path: '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9692aa0e_748e_11e8_8dfa_76d458035df6.slice/docker-abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152.scope',
    podUid: '9692aa0e-748e-11e8-8dfa-76d458035df6',
    containerId: 'abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152',
    qos: 'besteffort',
  },
  {
    form: 'systemd driver, guaranteed (no QoS slice)',
    source: "the kubelet's naming (pkg/kubelet/cm: guaranteed pods sit right under kubepods.slice)",
    path: '/kubepods.slice/kubepods-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice/cri-containerd-ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459.scope',
    podUid: '0125ec2f-b64a-4868-8f5b-94b56cbab864',
    containerId: 'ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459',
    qos: 'guaranteed',
    podPath: '/kubepods.slice/kubepods-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice',
  },
  {
    form: 'the colon form, under containerd.service',
    source: 'open-telemetry/opentelemetry-java#4507',
    path: '/system.slice/containerd.service/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459',
    podUid: '0125ec2f-b64a-4868-8f5b-94b56cbab864',
    containerId: 'ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459',
    qos: 'besteffort',
    containerPath:
      '/system.slice/containerd.service/kubepods-besteffort-pod0125ec2f_b64a_4868_8f5b_94b56cbab864.slice:cri-containerd:ee4b20e90ac7f42a10bd004d05646b13d8ab5e2c5e7cbc01abf8006bac016459',
  },
  {
    form: 'the colon form, at the root',
    source: 'duckdb/duckdb#16608',
    path: '/kubepods-burstable-podb96a7488_3ee1_4bdc_9c98_155cc887b417.slice:cri-containerd:6ef14b5a76df7b5d24285e3a04ccbc6fd323620272b3787b5dc440fc1b75d294',
    podUid: 'b96a7488-3ee1-4bdc-9c98-155cc887b417',
    containerId: '6ef14b5a76df7b5d24285e3a04ccbc6fd323620272b3787b5dc440fc1b75d294',
    qos: 'burstable',
  },
  {
    form: 'cgroupfs driver, burstable',
    source: 'duckdb/duckdb#7651',
    path: '/kubepods/burstable/pod7de2905f-d523-45a3-8dd9-8365a286a434/610228a731e860b5e593cfdf1ae6899eb73d7c5f947e6d69716d2c3351573c90',
    podUid: '7de2905f-d523-45a3-8dd9-8365a286a434',
    containerId: '610228a731e860b5e593cfdf1ae6899eb73d7c5f947e6d69716d2c3351573c90',
    qos: 'burstable',
    podPath: '/kubepods/burstable/pod7de2905f-d523-45a3-8dd9-8365a286a434',
    containerPath:
      '/kubepods/burstable/pod7de2905f-d523-45a3-8dd9-8365a286a434/610228a731e860b5e593cfdf1ae6899eb73d7c5f947e6d69716d2c3351573c90',
  },
  {
    form: 'cgroupfs driver, besteffort pause container',
    source: 'siderolabs/talos#3950 (cAdvisor ids)',
    path: '/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363/a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937',
    podUid: '18d34ce4-50c7-452c-9df8-53c4a3fdf363',
    containerId: 'a684bbdd0c4b6937b5ece9713bed661305ab0de570eb12b7c28a032aaf602937',
    qos: 'besteffort',
  },
  {
    form: 'cgroupfs driver, guaranteed',
    source: "the kubelet's naming (guaranteed pods sit right under kubepods)",
    path: '/kubepods/pod7de2905f-d523-45a3-8dd9-8365a286a434/610228a731e860b5e593cfdf1ae6899eb73d7c5f947e6d69716d2c3351573c90',
    podUid: '7de2905f-d523-45a3-8dd9-8365a286a434',
    containerId: '610228a731e860b5e593cfdf1ae6899eb73d7c5f947e6d69716d2c3351573c90',
    qos: 'guaranteed',
    podPath: '/kubepods/pod7de2905f-d523-45a3-8dd9-8365a286a434',
  },
  {
    form: 'cgroupfs driver, the pod cgroup itself (no container)',
    source: 'siderolabs/talos#3950 (cAdvisor ids)',
    path: '/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363',
    podUid: '18d34ce4-50c7-452c-9df8-53c4a3fdf363',
    qos: 'besteffort',
    podPath: '/kubepods/besteffort/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363',
  },
  {
    form: 'systemd driver, seen from another cgroup namespace',
    source: 'a pod reading a sibling under cgroup v2 with a private cgroup namespace',
    path: '/../../kubepods-besteffort.slice/kubepods-besteffort-pod2ca4a155_3599_498d_bb9d_4446693fa3ea.slice/crio-358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c.scope',
    podUid: '2ca4a155-3599-498d-bb9d-4446693fa3ea',
    containerId: '358607a37e7ada357032e7f5729c9ae6a3efdb7962acbcbe47ff6a3c5506cb1c',
    qos: 'besteffort',
  },
];

describe('parsePodCgroup: every form, with a real path', () => {
  it.each(FORMS)('$form ($source)', (f) => {
    const found = parsePodCgroup(f.path);
    expect(found).toMatchObject({ podUid: f.podUid, qos: f.qos });
    expect(found?.containerId).toBe(f.containerId);
    if (f.podPath !== undefined) expect(found?.podPath).toBe(f.podPath);
    if (f.containerPath !== undefined) expect(found?.containerPath).toBe(f.containerPath);
    // A sub-cgroup of the container (an init process's, a nested runtime's) is still in it.
    if (f.containerId) expect(parsePodCgroup(`${f.path}/init`)?.containerId).toBe(f.containerId);
  });

  it('reads the same pod from every hierarchy line of a v1, a v2 and a hybrid /proc/PID/cgroup', () => {
    const p = FORMS[0].path;
    const v1 = `12:memory:${p}\n11:cpu,cpuacct:${p}\n1:name=systemd:${p}\n`;
    const v2 = `0::${p}\n`;
    const hybrid = `9:name=systemd:${p}\n4:memory:${p}\n0::${p}\n`;
    for (const text of [v1, v2, hybrid])
      for (const line of parseCgroupFile(text)) expect(parsePodCgroup(line.path)?.podUid).toBe(FORMS[0].podUid);
  });

  it('finds no pod where there is none', () => {
    for (const p of [
      '/',
      '/system.slice/containerd.service',
      '/system.slice/docker-d0b3604b67ac7930dd34ba3a796627e3e4717d12309e90a4afe3f38b6816ac98.scope',
      '/kubepods.slice/kubepods-burstable.slice',
      '/kubepods/burstable',
      // pod<uid> outside kubepods is not the kubelet's
      '/machine/pod7de2905f-d523-45a3-8dd9-8365a286a434/x',
      '/kubepods/burstable/podnot-a-uid',
    ])
      expect(parsePodCgroup(p), p).toBeUndefined();
    expect(() => parsePodCgroup(3 as unknown as string)).toThrow(TypeError);
  });
});

describe("the kubelet's log names", () => {
  it('splits pod directories and container symlinks one way only', () => {
    expect(parsePodLogDir('kube-system_coredns-5d78c9869d-x2x9k_0125ec2f-b64a-4868-8f5b-94b56cbab864')).toEqual({
      namespace: 'kube-system',
      pod: 'coredns-5d78c9869d-x2x9k',
      uid: '0125ec2f-b64a-4868-8f5b-94b56cbab864',
    });
    expect(parsePodLogDir('kube-system_etcd-node1_187bff14cccb94f179e943eacce55bb3')?.uid).toBe(
      '187bff14cccb94f179e943eacce55bb3',
    );
    expect(parsePodLogDir('not_a_pod')).toBeUndefined();
    const id = FORMS[0].containerId as string;
    const log = `web-0_shop_nginx-${id}.log`;
    expect(parseContainerLogName(log)).toEqual({ id, name: { namespace: 'shop', pod: 'web-0', container: 'nginx' } });
    expect(parseContainerLogName(log, `/var/log/pods/shop_web-0_${FORMS[0].podUid}/nginx/0.log`)?.name.podUid).toBe(
      FORMS[0].podUid,
    );
    // A target into another pod's directory says nothing of this one.
    expect(
      parseContainerLogName(log, `/var/log/pods/shop_web-1_${FORMS[0].podUid}/nginx/0.log`)?.name.podUid,
    ).toBeUndefined();
    expect(parseContainerLogName('web-0_shop_nginx.log')).toBeUndefined();
  });
});

describe('readKubeletNames and podIdentity over a log tree', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-kube-logs-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const [a, b] = [FORMS[0], FORMS[9]];
  const dirA = `shop_web-0_${a.podUid}`;
  const dirB = `kube-system_proxy-x7_${b.podUid}`;
  for (const [dir, container] of [
    [dirA, 'nginx'],
    [dirA, 'sidecar'],
    [dirB, 'kube-proxy'],
  ]) {
    fs.mkdirSync(path.join(root, 'pods', dir, container), { recursive: true });
    fs.writeFileSync(path.join(root, 'pods', dir, container, '0.log'), '');
  }
  fs.mkdirSync(path.join(root, 'containers'));
  fs.symlinkSync(
    path.join(root, 'pods', dirA, 'nginx', '0.log'),
    path.join(root, 'containers', `web-0_shop_nginx-${a.containerId}.log`),
  );
  fs.symlinkSync(
    path.join(root, 'pods', dirB, 'kube-proxy', '0.log'),
    path.join(root, 'containers', `proxy-x7_kube-system_kube-proxy-${b.containerId}.log`),
  );

  it('names pods by UID and containers by ID', () => {
    const names = readKubeletNames(root);
    expect(names.pods.get(a.podUid)).toEqual({
      namespace: 'shop',
      pod: 'web-0',
      uid: a.podUid,
      containers: ['nginx', 'sidecar'],
    });
    expect(names.containers.get(a.containerId as string)).toEqual({
      namespace: 'shop',
      pod: 'web-0',
      container: 'nginx',
      podUid: a.podUid,
    });
    expect(names.pods.size).toBe(2);
    expect(names.containers.size).toBe(2);
    // A root without the kubelet's directories names nothing.
    const empty = readKubeletNames(path.join(root, 'pods'));
    expect(empty.pods.size + empty.containers.size).toBe(0);
  });

  it('names a process from its cgroup path, and guesses nothing', () => {
    const names = readKubeletNames(root);
    expect(podIdentity(a.path, names)).toEqual({
      namespace: 'shop',
      pod: 'web-0',
      podUid: a.podUid,
      qos: 'burstable',
      container: 'nginx',
      containerId: a.containerId,
    });
    // The pod's sandbox (pause) has no log: in the pod, in no named container.
    const pause = `${a.podPath}/cri-containerd-${'f'.repeat(64)}.scope`;
    expect(podIdentity(pause, names)).toEqual({
      namespace: 'shop',
      pod: 'web-0',
      podUid: a.podUid,
      qos: 'burstable',
      containerId: 'f'.repeat(64),
    });
    // A pod the logs do not name: no identity at all.
    expect(podIdentity(FORMS[3].path, names)).toBeUndefined();
    // A container ID named in another pod's logs is not this pod's container.
    const mixed: KubeletNames = { pods: names.pods, containers: new Map(names.containers) };
    mixed.containers.set('e'.repeat(64), { namespace: 'kube-system', pod: 'proxy-x7', container: 'kube-proxy' });
    expect(podIdentity(`${a.podPath}/cri-containerd-${'e'.repeat(64)}.scope`, mixed)?.container).toBeUndefined();
  });
});

describe('memoryMounts', () => {
  it("finds this machine's memory hierarchies in /proc/self/mountinfo", () => {
    const mounts = memoryMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
    for (const m of mounts) expect(fs.existsSync(m.dir)).toBe(true);
    expect(mounts.length).toBeGreaterThan(0);
    expect(
      memoryMounts(
        '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n',
      ),
    ).toEqual([
      { version: 1, dir: '/sys/fs/cgroup/memory' },
      { version: 2, dir: '/sys/fs/cgroup/unified' },
    ]);
  });
});

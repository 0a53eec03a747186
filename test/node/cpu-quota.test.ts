// The default thread count: cores narrowed by the affinity mask and the cgroup CPU quota (v2 cpu.max
// up the hierarchy, v1 CFS), on fake /proc and /sys trees; and on this machine, that it agrees with
// what /proc and /sys say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { cgroupPaths, countCpuList, parseCpuMax, usableCpus, type ReadText } from '../../src/node/cpu-quota.js';

const fake = (files: Record<string, string>): ReadText => (p) => files[p] ?? null;
const status = (list: string) => `Name:\tnode\nCpus_allowed:\tff\nCpus_allowed_list:\t${list}\nMems_allowed_list:\t0\n`;

test('CPU lists and cpu.max lines are read, odd ones refused', () => {
  assert.equal(countCpuList('0-3,8,10-11'), 7);
  assert.equal(countCpuList('5'), 1);
  assert.equal(countCpuList(''), null);
  assert.equal(countCpuList('3-1'), null);
  assert.equal(parseCpuMax('400000 100000\n'), 4);
  assert.equal(parseCpuMax('150000 100000'), 1.5);
  assert.equal(parseCpuMax('max 100000'), null);
  assert.equal(parseCpuMax('garbage'), null);
  assert.deepEqual([...cgroupPaths('12:cpu,cpuacct:/kubepods/pod1/c1\n0::/system.slice/x\n1:name=systemd:/y\n')], [
    ['cpu', '/kubepods/pod1/c1'],
    ['cpuacct', '/kubepods/pod1/c1'],
    ['', '/system.slice/x'],
    ['systemd', '/y'],
  ]);
});

test('no limit: the core count, saying so', () => {
  const r = usableCpus({ cores: 64, read: fake({ '/proc/self/status': status('0-63'), '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': 'cpu', '/sys/fs/cgroup/cpu.max': 'max 100000' }) });
  assert.deepEqual(r, { count: 64, source: '64 cores' });
});

test('cgroup v2: the tightest cpu.max from our cgroup up to the root wins, floored, at least 1', () => {
  const files = {
    '/proc/self/status': status('0-63'),
    '/proc/self/cgroup': '0::/kubepods/pod1/ctr\n',
    '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu memory',
    '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '400000 100000',
    '/sys/fs/cgroup/kubepods/pod1/cpu.max': '800000 100000',
    '/sys/fs/cgroup/kubepods/cpu.max': 'max 100000',
  };
  const r = usableCpus({ cores: 64, read: fake(files) });
  assert.equal(r.count, 4);
  assert.match(r.source, /CPU quota 4 CPUs, cgroup v2 \/sys\/fs\/cgroup\/kubepods\/pod1\/ctr\/cpu\.max "400000 100000"/);
  // the pod's limit tighter than the container's
  const tighter = usableCpus({ cores: 64, read: fake({ ...files, '/sys/fs/cgroup/kubepods/pod1/cpu.max': '250000 100000' }) });
  assert.equal(tighter.count, 2);
  assert.match(tighter.source, /pod1\/cpu\.max "250000 100000"/);
  // half a CPU still runs one thread
  assert.equal(usableCpus({ cores: 64, read: fake({ ...files, '/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max': '50000 100000' }) }).count, 1);
  // inside a container with its own cgroup namespace: path '/', the limit on the mount root
  const inside = usableCpus({ cores: 16, read: fake({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': 'cpu', '/sys/fs/cgroup/cpu.max': '100000 100000' }) });
  assert.equal(inside.count, 1);
});

test('cgroup v1: cfs_quota_us / cfs_period_us (-1 = none), under either mount name', () => {
  for (const mount of ['/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpu,cpuacct']) {
    const files = {
      '/proc/self/status': status('0-31'),
      '/proc/self/cgroup': '4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n',
      [`${mount}/cpu.cfs_period_us`]: '100000\n',
      [`${mount}/cpu.cfs_quota_us`]: '-1\n',
      [`${mount}/docker/abc/cpu.cfs_period_us`]: '100000\n',
      [`${mount}/docker/abc/cpu.cfs_quota_us`]: '300000\n',
    };
    const r = usableCpus({ cores: 32, read: fake(files) });
    assert.equal(r.count, 3, mount);
    assert.match(r.source, /cgroup v1 .*docker\/abc\/cpu\.cfs_quota_us 300000 \/ cpu\.cfs_period_us 100000/);
    const none = usableCpus({ cores: 32, read: fake({ ...files, [`${mount}/docker/abc/cpu.cfs_quota_us`]: '-1' }) });
    assert.deepEqual(none, { count: 32, source: '32 cores' });
  }
});

test('the affinity mask narrows the count, and a quota narrower still wins', () => {
  const r = usableCpus({ cores: 64, read: fake({ '/proc/self/status': status('0-5'), '/proc/self/cgroup': '' }) });
  assert.deepEqual(r, { count: 6, source: 'CPU affinity mask: 6 of 64 cores' });
  const q = usableCpus({
    cores: 64,
    read: fake({ '/proc/self/status': status('0-5'), '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': 'cpu', '/sys/fs/cgroup/cpu.max': '200000 100000' }),
  });
  assert.equal(q.count, 2);
  // a quota wider than the mask does not raise the count
  const wide = usableCpus({
    cores: 64,
    read: fake({ '/proc/self/status': status('0-5'), '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': 'cpu', '/sys/fs/cgroup/cpu.max': '1600000 100000' }),
  });
  assert.equal(wide.count, 6);
});

test('on this machine: never more than the cores or the affinity mask, and at least 1', () => {
  const r = usableCpus();
  assert.ok(r.count >= 1 && r.count <= cpus().length, JSON.stringify(r));
  const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m) assert.ok(r.count <= countCpuList(m[1]!)!, JSON.stringify(r));
});

// How many CPUs this process may really use: the default for --threads (a Node adapter; the engine
// core only ever receives a number).
//
// A container limited to 4 CPUs on a 64-core node still sees 64 cores in os.cpus(); starting 64
// threads there means each runs in short bursts and the kernel throttles the whole cgroup every
// period. Three things can limit us, and the smallest wins:
//   - the CPU affinity mask (taskset, cpuset cgroup, `docker run --cpuset-cpus`): Cpus_allowed_list
//     in /proc/self/status;
//   - cgroup v2: `cpu.max` ("QUOTA PERIOD" or "max PERIOD") in our cgroup and every ancestor up to
//     the mount root (Kubernetes puts the limit on the container's cgroup, a runtime may put one on
//     the pod's);
//   - cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the cpu controller (-1 = no quota).
// A quota of Q periods allows Q CPUs' worth of time: we take floor(Q), at least 1, as Go's automaxprocs
// does (1.5 CPUs run 1 thread unthrottled rather than 2 threads throttled half the time).
//
// Files are read through a small reader so tests can hand in a fake /proc and /sys.

import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { posix } from 'node:path';

/** Reads a text file, or returns null when it is absent or unreadable. */
export type ReadText = (path: string) => string | null;

export interface CpuCount {
  /** threads to start */
  count: number;
  /** where the count came from, for the start line */
  source: string;
}

const readReal: ReadText = (p) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return null;
  }
};

/** Counts the CPUs of a list such as "0-3,8,10-11" (Cpus_allowed_list, cpuset.cpus); null if unreadable. */
export function countCpuList(list: string): number | null {
  const s = list.trim();
  if (s === '') return null;
  let n = 0;
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return null;
    n += b - a + 1;
  }
  return n;
}

/** CPUs in the affinity mask, from /proc/self/status; null where it cannot be read. */
export function affinityCount(read: ReadText, procRoot = '/proc'): number | null {
  const status = read(`${procRoot}/self/status`);
  const m = status && /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  return m ? countCpuList(m[1]!) : null;
}

/** One quota found in a cgroup file. */
export interface Quota {
  /** CPUs' worth of time per period (may be fractional) */
  cpus: number;
  /** the file and what it said */
  source: string;
}

/** "QUOTA PERIOD" of cgroup v2's cpu.max; null for "max" (no limit) or an unreadable line. */
export function parseCpuMax(text: string): number | null {
  const m = /^(max|\d+)\s+(\d+)\s*$/.exec(text.trim());
  if (!m || m[1] === 'max') return null;
  const quota = Number(m[1]);
  const period = Number(m[2]);
  return quota > 0 && period > 0 ? quota / period : null;
}

/** Our cgroup's path under each hierarchy, from /proc/self/cgroup: '' for v2's, controller names for v1's. */
export function cgroupPaths(text: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '') paths.set('', m[2]!);
    else for (const c of m[1]!.split(',')) paths.set(c.replace(/^name=/, ''), m[2]!);
  }
  return paths;
}

/** The directories from `dir` up to `root`, deepest first. */
function upTo(root: string, rel: string): string[] {
  const out: string[] = [];
  let p = posix.normalize('/' + rel);
  for (;;) {
    out.push(p === '/' ? root : posix.join(root, p));
    if (p === '/') return out;
    p = posix.dirname(p);
  }
}

/**
 * The tightest CPU quota of our cgroup and its ancestors (v2 cpu.max, else v1 CFS), or null when
 * none is set. Inside a container with its own cgroup namespace our path reads '/', and the
 * container's limit is on the mount root itself.
 */
export function cgroupQuota(read: ReadText, procRoot = '/proc', cgroupRoot = '/sys/fs/cgroup'): Quota | null {
  const paths = cgroupPaths(read(`${procRoot}/self/cgroup`) ?? '');
  let best: Quota | null = null;
  const consider = (q: Quota) => {
    if (!best || q.cpus < best.cpus) best = q;
  };
  const v2 = paths.get('');
  // on a v2-only host (or a v2 container) cpu.max sits in the unified tree at cgroupRoot
  if (v2 !== undefined && read(`${cgroupRoot}/cgroup.controllers`) !== null) {
    for (const dir of upTo(cgroupRoot, v2)) {
      const text = read(`${dir}/cpu.max`);
      const cpus = text === null ? null : parseCpuMax(text);
      if (cpus !== null) consider({ cpus, source: `cgroup v2 ${dir}/cpu.max "${text!.trim()}"` });
    }
  }
  const v1 = paths.get('cpu');
  if (v1 !== undefined) {
    for (const mount of [`${cgroupRoot}/cpu`, `${cgroupRoot}/cpu,cpuacct`, `${cgroupRoot}/cpuacct,cpu`]) {
      if (read(`${mount}/cpu.cfs_period_us`) === null) continue;
      for (const dir of upTo(mount, v1)) {
        const q = read(`${dir}/cpu.cfs_quota_us`);
        const p = read(`${dir}/cpu.cfs_period_us`);
        if (q === null || p === null) continue;
        const quota = Number(q.trim());
        const period = Number(p.trim());
        if (quota > 0 && period > 0) consider({ cpus: quota / period, source: `cgroup v1 ${dir}/cpu.cfs_quota_us ${quota} / cpu.cfs_period_us ${period}` });
      }
      break;
    }
  }
  return best;
}

export interface CpuCountOptions {
  read?: ReadText;
  procRoot?: string;
  cgroupRoot?: string;
  /** the host's core count (os.cpus().length) */
  cores?: number;
}

/** The thread count for a process that was given no --threads: cores, narrowed by affinity and quota. */
export function usableCpus(opts: CpuCountOptions = {}): CpuCount {
  const read = opts.read ?? readReal;
  const procRoot = opts.procRoot ?? '/proc';
  const cores = opts.cores ?? (cpus().length || availableParallelism());
  let result: CpuCount = { count: Math.max(1, cores), source: `${cores} cores` };
  const affinity = affinityCount(read, procRoot);
  if (affinity !== null && affinity < result.count) result = { count: affinity, source: `CPU affinity mask: ${affinity} of ${cores} cores` };
  const quota = cgroupQuota(read, procRoot, opts.cgroupRoot ?? '/sys/fs/cgroup');
  if (quota) {
    const n = Math.max(1, Math.floor(quota.cpus + 1e-9));
    if (n < result.count) result = { count: n, source: `CPU quota ${round(quota.cpus)} CPUs, ${quota.source}` };
  }
  return result;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

// Shared by the container tests and bench/rolling-restart: podman with the test containers.conf
// (runc, cgroupfs, a nofile/nproc limit the CI host allows), whether it works here, and the image
// built once per run by deploy/build-image.sh.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export const ROOT = repoRoot();
export const CONTAINERS_CONF = join(ROOT, 'test', 'deploy', 'containers.conf');
export const podmanEnv = { ...process.env, CONTAINERS_CONF };

/** Why containers cannot be tested here, or null when podman (and for building, mmdebstrap) work. */
export function containerSkipReason(needBuild = true): string | null {
  const which = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  if (!which('podman')) return 'podman is not installed (apt-get install podman runc; .ci/run installs it)';
  if (!which('runc')) return 'runc is not installed (apt-get install runc)';
  if (needBuild && !which('mmdebstrap')) return 'mmdebstrap is not installed (apt-get install mmdebstrap)';
  const info = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], { env: podmanEnv, encoding: 'utf8', timeout: 60000 });
  if (info.status !== 0) return `podman does not work here: ${(info.stderr || info.error?.message || '').trim().split('\n').pop()}`;
  return null;
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs podman with the test configuration; never throws on a non-zero exit. */
export function podman(args: string[], timeoutMs = 120000): Promise<Run> {
  return new Promise((resolve) => {
    execFile('podman', args, { env: podmanEnv, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? ((err as NodeJS.ErrnoException & { code?: unknown }).code as number | undefined) ?? 1 : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** Builds the image with deploy/build-image.sh (dist/ must be built); resolves with the script's output. */
export function buildImage(tag: string, timeoutMs = 400000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(join(ROOT, 'deploy', 'build-image.sh'), ['--no-build', '--tag', tag], { cwd: ROOT, env: podmanEnv, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, stdout, stderr });
    });
  });
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers 200; resolves with the seconds it took, or throws after `ms`. */
export async function waitReady(url: string, ms = 60000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return (performance.now() - t0) / 1000;
    } catch {
      // not listening yet
    }
    if (performance.now() - t0 > ms) throw new Error(`${url} not ready within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

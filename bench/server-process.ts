// A server started by a benchmark as a child process (wf_server or native llama-server): started,
// waited for until /health answers, stopped with SIGTERM (SIGKILL after 10 s).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Starts `cmd args` and resolves once `url`/health answers 200 (30 min at most: a 2B4T file loads slowly on a busy machine). */
export async function startServer(what: string, cmd: string, args: string[], url: string): Promise<ChildProcess> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  proc.stderr!.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-3000)));
  const t0 = performance.now();
  const end = Date.now() + 1_800_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with code ${proc.exitCode}\n${tail}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) {
      proc.kill('SIGKILL');
      throw new Error(`${what} did not become healthy\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`[${what}] ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return proc;
}

/** SIGTERM, then SIGKILL if it has not exited within 10 s. */
export async function stopServer(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.kill('SIGTERM');
  await Promise.race([once(proc, 'exit'), new Promise((r) => setTimeout(r, 10_000))]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

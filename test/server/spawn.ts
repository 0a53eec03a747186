// Runs the real command-line entry points in a child process: `node bin/<name>.js` when the tests
// run compiled (dist/test/...), else the TypeScript source through tsx, so both modes test their
// own code.
//
// Every child spawned here is killed when its test file's tests end, passed or failed (a root
// `after` hook, registered when a test file imports this module), and when the process exits: a
// test that fails before it stops its server must not leave the server holding the test file's
// process open (Node 20's runner has no force exit, so `npm test` would hang).
import { after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}

export const ROOT = repoRoot();
const compiled = fileURLToPath(import.meta.url).includes(`${join('dist', 'test')}`);

/** node arguments that run `wf_server` (`wf_server`) or `wf` (`wf`) with argv. */
export function cliArgs(name: 'wf' | 'wf_server', argv: string[]): string[] {
  if (compiled) return [join(ROOT, 'bin', `${name}.js`), ...argv];
  const src = join(ROOT, 'src', 'cli', `${name}.ts`);
  const code = `const m = await import(${JSON.stringify(src)}); const c = await m.main(process.argv.slice(1)); if (c !== undefined) process.exitCode = c;`;
  return ['--import', 'tsx', '--input-type=module', '-e', code, '--', ...argv];
}

/** children spawned by this test file that have not exited yet */
const children = new Set<ChildProcess>();

/** Kills every child this test file spawned that still runs. */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}

after(killChildren);
process.once('exit', killChildren);

export function spawnCli(name: 'wf' | 'wf_server', argv: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, cliArgs(name, argv), { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Collects a child's output until it exits (killing it after timeoutMs). */
export function finished(child: ChildProcess, timeoutMs = 60000): Promise<Finished> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The URL a spawned wf_server prints on its 'listening on' line; rejects with its stderr when the
 * line does not come within `ms` or the process exits first.
 */
export function listeningUrl(child: ChildProcess, ms = 30000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no 'listening' line: ${err}`)), ms);
    const onData = (d: Buffer | string) => {
      err += d;
      const m = /listening on (http:\/\/\S+) /.exec(err);
      if (m) {
        clearTimeout(timer);
        child.stderr!.off('data', onData);
        child.off('exit', onExit);
        resolve(m[1]!);
      }
    };
    const onExit = () => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening: ${err}`));
    };
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

// Starts a worker_threads Worker from a module next to the caller, compiled or from TypeScript
// sources (tsx, in tests: Node 20 does not pass loader hooks on to workers, so the worker registers
// tsx itself).
// Workers inherit the process's execArgv; --input-type (set by `node --input-type=module -e ...`)
// makes them fail, and so do process-wide options (`node --secure-heap=0 bin/wf.js`,
// `--use-largepages=off`, the list Node 24's test runner gives its children): the Worker constructor
// refuses them, and the worker then starts without the process's options. Our workers need none (the
// kernels' V8 flag is process-wide).

import { Worker } from 'node:worker_threads';

/** `name` without extension, resolved next to `from` (the caller's import.meta.url). */
export function startWorker(from: string, name: string, workerData: unknown): Worker {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  try {
    return make(from, name, workerData, execArgv);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    return make(from, name, workerData, []);
  }
}

function make(from: string, name: string, workerData: unknown, execArgv: string[]): Worker {
  if (!from.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, from), { workerData, execArgv });
  const entry = new URL(`./${name}.ts`, from).href;
  const api = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData, execArgv });
}

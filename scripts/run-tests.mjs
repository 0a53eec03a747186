// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner, one `node --test`
// process per file (as `node --test a b c` does), at most `WF_TEST_CONCURRENCY` at once (default:
// the cores less one, node's own default). Extra arguments (file name filters) narrow the run:
// `node scripts/run-tests.mjs gguf`.
//
// Node 20's runner has no per-file timeout and no force exit: a test file whose process stays
// alive (a server a failing test never closed, a child process never killed) would hang the whole
// run. So each file gets a deadline (`WF_TEST_FILE_TIMEOUT` seconds, default 600) and runs in a
// process group of its own; when the file ends, or misses its deadline, the whole group is killed,
// and with it anything the file started and left behind. (The test helpers also close their
// servers and kill their children when a file's tests end: test/server/spawn.ts, helpers.ts.)
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

function listTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = listTests('dist/test').sort();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
if (!files.length) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}

const positive = (v, name) => {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) {
    console.error(`${name} must be a positive number, got '${v}'`);
    process.exit(1);
  }
  return n;
};
const fileTimeoutMs = (positive(process.env.WF_TEST_FILE_TIMEOUT, 'WF_TEST_FILE_TIMEOUT') ?? 600) * 1000;
const concurrency = Math.floor(positive(process.env.WF_TEST_CONCURRENCY, 'WF_TEST_CONCURRENCY') ?? Math.max(1, availableParallelism() - 1));
// one file at a time: its output streams as it comes; several: each file's output is printed whole when it ends
const live = concurrency === 1 || files.length === 1;

/** process groups of the files running now */
const running = new Set();

/** Kills a file's process group (the test process and whatever it spawned), ignoring one already gone. */
function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is empty: nothing left to kill
  }
}

/** Runs one file; resolves with its outcome ('passed', 'failed (exit N)', 'timed out after N s'). */
function runFile(file) {
  return new Promise((resolve) => {
    const args = ['--test'];
    if (!process.env.NODE_TEST_REPORTER && !process.execArgv.some((a) => a.startsWith('--test-reporter'))) args.push('--test-reporter=spec');
    const child = spawn(process.execPath, [...args, file], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child.pid);
    let out = '';
    const onData = (d) => (live ? process.stdout.write(d) : (out += d));
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, fileTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      killGroup(child.pid); // whatever the file started and left running
      running.delete(child.pid);
      if (!live) process.stdout.write(`\n# ${file}\n${out}`);
      if (timedOut) resolve(`timed out after ${fileTimeoutMs / 1000} s (its process group was killed)`);
      else if (code === 0) resolve('passed');
      else resolve(`failed (${code !== null ? `exit ${code}` : signal})`);
    });
  });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    for (const pid of running) killGroup(pid);
    process.exit(130);
  });
}

const outcomes = new Map();
let next = 0;
async function worker() {
  while (next < files.length) {
    const f = files[next++];
    outcomes.set(f, await runFile(f));
  }
}
const t0 = Date.now();
await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));

const bad = files.filter((f) => outcomes.get(f) !== 'passed');
console.log(`\n# ${files.length} test files in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${files.length - bad.length} passed, ${bad.length} not`);
for (const f of bad) console.log(`#   ${f}: ${outcomes.get(f)}`);
process.exit(bad.length ? 1 : 0);

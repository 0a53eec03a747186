// Rolling restart under load and the autoscaling signal, for real but short (bench/rolling-restart.ts
// is the full run, with containers): 3 wf_server processes behind haproxy (leastconn, /health
// checks), 8 streaming clients; each replica in turn is taken out of the balancer (the preStop's
// job), SIGTERMed, drained and started again, and not one request may fail. Then a real Prometheus
// scrapes the replicas and the chart's KEDA query follows the queue up and back down.
// Skipped, saying so, where haproxy (or for the second test prometheus) is missing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processReplica, rollingRestart, scalingSignal, startHaproxy, type Balancer, type Replica } from '../../bench/rolling-restart.js';
import { freePort } from './podman.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const noHaproxy = has('haproxy') ? false : 'haproxy is not installed (apt-get install haproxy; .ci/run installs it)';
const noPrometheus = noHaproxy || (has('prometheus') ? false : 'prometheus is not installed (apt-get install prometheus; .ci/run installs it)');
for (const s of new Set([noHaproxy, noPrometheus])) if (s) console.log(`# skipped: ${s}`);

const dir = mkdtempSync(join(tmpdir(), 'wf-rolling-test-'));
const replicas: Replica[] = [];
let lb: Balancer | null = null;

before(async () => {
  if (noHaproxy) return;
  for (let i = 1; i <= 3; i++) replicas.push(processReplica(`wf${i}`, await freePort()));
  await Promise.all(replicas.map((r) => r.start()));
  lb = await startHaproxy(replicas, dir);
});

after(async () => {
  await lb?.close();
  for (const r of replicas) await r.remove();
  rmSync(dir, { recursive: true, force: true });
});

test('a rolling restart behind haproxy with the preStop step: every stream completes, every replica exits 0', { skip: noHaproxy }, async () => {
  const r = await rollingRestart(replicas, lb!, { rounds: 1, clients: 8, preStop: true });
  console.log(`# ${r.ok} requests completed, ${r.failed} failed over ${r.restarts} replica restarts in ${r.seconds.toFixed(1)} s`);
  assert.equal(r.failed, 0, r.failures.join('\n'));
  assert.ok(r.ok >= 8, `only ${r.ok} requests completed`);
  assert.deepEqual(r.exitCodes, [0, 0, 0]);
  // all three are back in the balancer and healthy
  const stat = await lb!.command('show servers state be');
  for (const rep of replicas) assert.match(stat, new RegExp(`\\b${rep.name}\\b`));
  assert.equal((await fetch(`${lb!.url}/health`)).status, 200);
});

test('the scaling signal: Prometheus answers the chart\'s queue query, rising under a burst and falling after it', { skip: noPrometheus }, async () => {
  const s = await scalingSignal(replicas, lb!, dir);
  console.log(`# ${s.query}: ${s.idleBefore} -> peak ${s.peak} -> ${s.idleAfter}`);
  assert.equal(s.idleBefore, 0);
  // 24 clients on 3 replicas of 2 slots: up to 18 wait
  assert.ok(s.peak >= 3, `the queue never rose: ${JSON.stringify(s.series)}`);
  assert.equal(s.idleAfter, 0);
});

// Rolling restart under load, and the autoscaling signal, for real (a benchmark; test/deploy/rolling.test.ts
// runs a short version of it and asserts zero failures).
//
//   - 3 replicas of the server image (podman, host network, loopback ports; or plain processes with
//     --processes) behind haproxy (leastconn, health checks on /health every 500 ms);
//   - 8 clients stream chat completions through haproxy without pause;
//   - each replica in turn, --rounds times: [with preStop] taken out of the balancer through
//     haproxy's admin socket (as Kubernetes removes a terminating pod from the endpoints while its
//     preStop runs), a pause, then SIGTERM (podman stop); it drains, exits, is started again, and
//     put back once /health answers. [control, --no-prestop] SIGTERM at once, as a pod without a
//     preStop gets it.
//   - a failed request: any status but 200, a network error, or a stream without [DONE].
//   - with --prometheus: a real Prometheus scrapes the replicas every second (labelled as the chart's
//     pods would be) and the chart's KEDA query, sum(wf_requests_queued{...}), is asked while a
//     burst of clients comes and goes: it must rise with the load and fall after it.
//
// Run: npm run build && node dist/bench/rolling-restart.js [--rounds 3] [--clients 8] [--processes]
//      [--prometheus] [--out FILE.json]
// Prints the figures and writes bench/results/rolling-restart.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { buildImage, freePort, podman, ROOT, waitReady } from '../test/deploy/podman.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One replica: a container (or a process) serving on a loopback port. */
export interface Replica {
  name: string;
  port: number;
  start(): Promise<void>;
  /** SIGTERM; resolves once it exited, with its exit code */
  stop(): Promise<number | null>;
  remove(): Promise<void>;
}

const SERVER_ARGS = (port: number) => ['--host', '127.0.0.1', '--port', String(port), '-np', '2', '--threads', '1', '--drain-timeout', '30', '--quiet'];

export function containerReplica(image: string, name: string, port: number): Replica {
  return {
    name,
    port,
    async start() {
      await podman(['rm', '-f', '-t', '0', name]);
      const r = await podman(['run', '-d', '--name', name, '--network', 'host', '--read-only', '--cpus', '1', image, ...SERVER_ARGS(port)]);
      if (r.code !== 0) throw new Error(`podman run ${name}: ${r.stderr}`);
      await waitReady(`http://127.0.0.1:${port}/health`, 60000);
    },
    async stop() {
      await podman(['stop', '-t', '60', name], 90000);
      const code = (await podman(['inspect', name, '--format', '{{.State.ExitCode}}'])).stdout.trim();
      return code === '' ? null : Number(code);
    },
    async remove() {
      await podman(['rm', '-f', '-t', '0', name]);
    },
  };
}

export function processReplica(name: string, port: number): Replica {
  let child: ChildProcess | null = null;
  return {
    name,
    port,
    async start() {
      child = spawn(process.execPath, [join(ROOT, 'bin', 'wf_server.js'), ...SERVER_ARGS(port)], { stdio: 'ignore' });
      await waitReady(`http://127.0.0.1:${port}/health`, 60000);
    },
    async stop() {
      const c = child!;
      const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
      c.kill('SIGTERM');
      return exited;
    },
    async remove() {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** haproxy in front of the replicas, with an admin socket to take servers in and out. */
export interface Balancer {
  url: string;
  command(cmd: string): Promise<string>;
  close(): Promise<void>;
}

export async function startHaproxy(replicas: Replica[], dir: string): Promise<Balancer> {
  const port = await freePort();
  const sock = join(dir, 'haproxy.sock');
  const cfg = [
    'global',
    `  stats socket ${sock} mode 600 level admin`,
    'defaults',
    '  mode http',
    '  timeout connect 2s',
    '  timeout client 120s',
    '  timeout server 120s',
    // a connection refused (a replica just gone) is retried on another server; a 503 is not
    '  retries 3',
    '  option redispatch',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    '  default_backend be',
    'backend be',
    '  balance leastconn',
    '  option httpchk GET /health',
    '  http-check expect status 200',
    '  default-server inter 500ms fall 1 rise 1',
    ...replicas.map((r) => `  server ${r.name} 127.0.0.1:${r.port} check`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'haproxy.cfg'), cfg);
  const child = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(`${url}/health`, 15000);
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`haproxy did not start: ${err}`);
  }
  const command = (cmd: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(sock);
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.end(cmd + '\n');
    });
  return {
    url,
    command,
    close: async () => {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/** Streaming clients through the balancer until stopped; every request's outcome counted. */
export class Load {
  ok = 0;
  failed = 0;
  readonly failures: string[] = [];
  private running = true;
  private readonly loops: Promise<void>[] = [];

  constructor(url: string, clients: number, maxTokens = 32) {
    for (let i = 0; i < clients; i++) this.loops.push(this.loop(url, i, maxTokens));
  }

  private async loop(url: string, i: number, maxTokens: number): Promise<void> {
    while (this.running) {
      const why = await oneStream(url, `client ${i}: tell me more`, maxTokens);
      if (why === null) this.ok++;
      else {
        this.failed++;
        if (this.failures.length < 20) this.failures.push(why);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/** One streamed chat completion; null when it completed, else why it failed. */
async function oneStream(url: string, content: string, maxTokens: number): Promise<string | null> {
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: maxTokens, stream: true }),
      signal: AbortSignal.timeout(120000),
    });
    const text = await res.text();
    if (res.status !== 200) return `status ${res.status}: ${text.slice(0, 200)}`;
    if (!text.trimEnd().endsWith('data: [DONE]')) return `stream cut: ...${text.slice(-200)}`;
    return null;
  } catch (e) {
    return `network: ${(e as Error).cause ?? (e as Error).message}`;
  }
}

export interface RestartResult {
  preStop: boolean;
  rounds: number;
  restarts: number;
  ok: number;
  failed: number;
  failures: string[];
  exitCodes: (number | null)[];
  /** seconds from start() to /health 200, per restart */
  readySeconds: number[];
  seconds: number;
}

/** Restarts every replica in turn, `rounds` times, under load. */
export async function rollingRestart(replicas: Replica[], lb: Balancer, opts: { rounds: number; clients: number; preStop: boolean; preStopMs?: number }): Promise<RestartResult> {
  const t0 = performance.now();
  const load = new Load(lb.url, opts.clients);
  await sleep(1000);
  const exitCodes: (number | null)[] = [];
  const readySeconds: number[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (const r of replicas) {
      if (opts.preStop) {
        // what the endpoint removal does while a preStop runs: no new requests, the current ones go on
        await lb.command(`set server be/${r.name} state maint`);
        await sleep(opts.preStopMs ?? 1000);
      }
      exitCodes.push(await r.stop());
      const s0 = performance.now();
      await r.start();
      readySeconds.push((performance.now() - s0) / 1000);
      if (opts.preStop) await lb.command(`set server be/${r.name} state ready`);
      // let the health check see it before the next one goes
      await sleep(1200);
    }
  }
  await sleep(500);
  await load.stop();
  return {
    preStop: opts.preStop,
    rounds: opts.rounds,
    restarts: opts.rounds * replicas.length,
    ok: load.ok,
    failed: load.failed,
    failures: load.failures,
    exitCodes,
    readySeconds,
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface ScalingResult {
  query: string;
  /** [seconds since start, query value] */
  series: [number, number][];
  peak: number;
  idleBefore: number;
  idleAfter: number;
}

/** A real Prometheus scrapes the replicas; the chart's KEDA query is asked while a burst comes and goes. */
export async function scalingSignal(replicas: Replica[], lb: Balancer, dir: string, burstClients = 24): Promise<ScalingResult> {
  const port = await freePort();
  const cfg = [
    'global:',
    '  scrape_interval: 1s',
    'scrape_configs:',
    '  - job_name: wrinklefree',
    '    static_configs:',
    // the labels the chart's pods get from Kubernetes service discovery
    ...replicas.map((r, i) => `      - targets: ["127.0.0.1:${r.port}"]\n        labels: {namespace: "ai", pod: "rel-wrinklefree-${i}"}`),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), cfg);
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
  const query = 'sum(wf_requests_queued{namespace="ai",pod=~"rel-wrinklefree-.*"})';
  const series: [number, number][] = [];
  const t0 = performance.now();
  const ask = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
    const j = (await r.json()) as { data?: { result?: { value: [number, string] }[] } };
    const v = j.data?.result?.[0]?.value?.[1];
    if (v !== undefined) series.push([(performance.now() - t0) / 1000, Number(v)]);
    return v === undefined ? null : Number(v);
  };
  try {
    await waitReady(`http://127.0.0.1:${port}/-/ready`, 30000);
    // wait for the first scrapes of every target
    for (let i = 0; i < 60 && (await ask()) === null; i++) await sleep(500);
    for (let i = 0; i < 3; i++) {
      await ask();
      await sleep(1000);
    }
    const idleBefore = series.at(-1)?.[1] ?? NaN;
    const load = new Load(lb.url, burstClients, 48);
    for (let i = 0; i < 10; i++) {
      await sleep(1000);
      await ask();
    }
    const peak = Math.max(...series.map((s) => s[1]));
    await load.stop();
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      await ask();
    }
    return { query, series, peak, idleBefore, idleAfter: series.at(-1)?.[1] ?? NaN };
  } finally {
    prom.kill('SIGTERM');
  }
}

async function main(): Promise<number> {
  const OPTIONS: OptionSpec[] = [
    { name: 'rounds', type: 'number', description: 'rolling restarts (each restarts every replica once)', default: 3 },
    { name: 'clients', type: 'number', description: 'streaming clients', default: 8 },
    { name: 'processes', type: 'boolean', description: 'replicas as plain processes instead of containers' },
    { name: 'image', type: 'string', description: 'an image already built (default: build one with deploy/build-image.sh)' },
    { name: 'no-control', type: 'boolean', description: 'skip the run without preStop' },
    { name: 'prometheus', type: 'boolean', description: 'also measure the scaling signal with a real Prometheus' },
    { name: 'out', type: 'string', description: 'JSON report (default bench/results/rolling-restart.json)' },
  ];
  const o = parseArgs(process.argv.slice(2), OPTIONS).options;
  const dir = mkdtempSync(join(tmpdir(), 'wf-rolling-'));
  let image = o.image as string | undefined;
  if (!o.processes && !image) {
    image = `localhost/wrinklefree:bench-${process.pid}`;
    const b = await buildImage(image);
    if (b.code !== 0) throw new Error(`build-image.sh failed: ${b.stderr.slice(-2000)}`);
    console.log(b.stderr.trim().split('\n').pop());
  }
  const replicas: Replica[] = [];
  for (let i = 1; i <= 3; i++) {
    const port = await freePort();
    replicas.push(o.processes ? processReplica(`wf${i}`, port) : containerReplica(image!, `wf-bench-${process.pid}-${i}`, port));
  }
  const report: Record<string, unknown> = { mode: o.processes ? 'processes' : 'containers', replicas: 3, clients: o.clients };
  let lb: Balancer | null = null;
  try {
    await Promise.all(replicas.map((r) => r.start()));
    lb = await startHaproxy(replicas, dir);
    const show = (r: RestartResult) =>
      console.log(
        `${r.preStop ? 'with preStop' : 'control, no preStop'}: ${r.rounds} rolling restart(s), ${r.restarts} replica restarts in ${r.seconds.toFixed(1)} s: ` +
          `${r.ok} requests completed, ${r.failed} failed; exit codes ${[...new Set(r.exitCodes)].join(',')}; ready after restart ${Math.min(...r.readySeconds).toFixed(2)}..${Math.max(...r.readySeconds).toFixed(2)} s` +
          (r.failures.length ? `\n  first failures: ${r.failures.slice(0, 3).join(' | ')}` : ''),
      );
    const withPre = await rollingRestart(replicas, lb, { rounds: o.rounds as number, clients: o.clients as number, preStop: true });
    show(withPre);
    report.withPreStop = withPre;
    if (!o['no-control']) {
      const control = await rollingRestart(replicas, lb, { rounds: o.rounds as number, clients: o.clients as number, preStop: false });
      show(control);
      report.control = control;
    }
    if (o.prometheus) {
      const s = await scalingSignal(replicas, lb, dir);
      console.log(`scaling signal: ${s.query}: ${s.idleBefore} before the burst, peak ${s.peak}, ${s.idleAfter} after; series ${s.series.map(([t, v]) => `${t.toFixed(0)}s:${v}`).join(' ')}`);
      report.scaling = s;
    }
  } finally {
    await lb?.close();
    for (const r of replicas) await r.remove();
    if (image && !o.image) await podman(['rmi', '-f', image]);
    rmSync(dir, { recursive: true, force: true });
  }
  const out = (o.out as string | undefined) ?? join(ROOT, 'bench', 'results', 'rolling-restart.json');
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`wrote ${out}`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (c) => process.exit(c),
    (e) => {
      console.error(e);
      process.exit(2);
    },
  );
}

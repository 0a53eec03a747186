// The server image's figures (a benchmark): its size, start-to-ready seconds and resident memory for
// the demo model and for a 2B4T-shaped file on a mounted volume, and the thread count a container
// limited with --cpus N gets. The sizing table of deploy/README.md comes from here.
//
//   npm run build && node dist/bench/image-start.js [--image IMAGE] [--type tq2_0] [--cpus 1,2] [--out FILE.json]
//
// Without --image it builds one with deploy/build-image.sh (and removes it afterwards). The 2B4T-shaped
// file (synthetic weights, the real shapes: ~1.2 GB in TQ2_0) is written once under the temp folder.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { parseExposition } from '../src/server/metrics.js';
import { BITNET_2B4T_SHAPE, byteLevelTokenizer } from '../src/model/synthetic.js';
import { buildImage, freePort, podman, ROOT, waitReady } from '../test/deploy/podman.js';
import { writeSyntheticModelFile } from './synthetic-file.js';

interface Start {
  what: string;
  cpus: number;
  threads: number | null;
  threadSource: string;
  readySeconds: number;
  rssMiB: number;
}

async function startOnce(image: string, what: string, cpus: number, volume: string[], args: string[]): Promise<Start> {
  const name = `wf-image-start-${process.pid}`;
  const port = await freePort();
  await podman(['rm', '-f', '-t', '0', name]);
  const t0 = performance.now();
  const r = await podman(['run', '-d', '--name', name, '--network', 'host', '--read-only', '--cpus', String(cpus), ...volume, image, '--host', '127.0.0.1', '--port', String(port), ...args]);
  if (r.code !== 0) throw new Error(r.stderr);
  try {
    await waitReady(`http://127.0.0.1:${port}/health`, 300000);
    const readySeconds = (performance.now() - t0) / 1000;
    const logs = await podman(['logs', name]);
    const m = /wf_server: (\d+) thread\(s\), from (.*)/.exec(logs.stdout + logs.stderr);
    const metrics = parseExposition(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const rss = metrics.samples.find((s) => s.name === 'process_resident_memory_bytes')?.value ?? NaN;
    return { what, cpus, threads: m ? Number(m[1]) : null, threadSource: m?.[2] ?? '', readySeconds, rssMiB: rss / 2 ** 20 };
  } finally {
    await podman(['rm', '-f', '-t', '0', name]);
  }
}

async function main(): Promise<void> {
  const OPTIONS: OptionSpec[] = [
    { name: 'image', type: 'string', description: 'an image already built' },
    { name: 'type', type: 'string', description: 'weight type of the 2B4T-shaped file', default: 'tq2_0' },
    { name: 'cpus', type: 'string', description: 'the --cpus values to try with the demo', default: '1,2' },
    { name: 'out', type: 'string', description: 'JSON report', default: join(ROOT, 'bench', 'results', 'image-start.json') },
  ];
  const o = parseArgs(process.argv.slice(2), OPTIONS).options;
  let image = o.image as string | undefined;
  const built = !image;
  if (!image) {
    image = `localhost/wrinklefree:bench-${process.pid}`;
    const b = await buildImage(image);
    if (b.code !== 0) throw new Error(b.stderr.slice(-2000));
  }
  try {
    const size = (await podman(['image', 'inspect', image, '--format', '{{.Size}}'])).stdout.trim();
    console.log(`image ${image}: ${(Number(size) / 1e6).toFixed(1)} MB (podman image inspect .Size)`);
    const starts: Start[] = [];
    const show = (s: Start) => {
      starts.push(s);
      console.log(`${s.what}, --cpus ${s.cpus}: ready in ${s.readySeconds.toFixed(2)} s, RSS ${s.rssMiB.toFixed(0)} MiB, ${s.threads} thread(s) (${s.threadSource})`);
    };
    for (const cpus of String(o.cpus).split(',').map(Number)) show(await startOnce(image, 'demo model (in the image)', cpus, [], []));
    const type = o.type as 'tq2_0' | 'i2_s' | 'tq1_0';
    const dir = join(tmpdir(), 'wf-bench');
    mkdirSync(dir, { recursive: true });
    const file = `bitnet-2b4t-shape-30L-${type}.gguf`;
    if (!existsSync(join(dir, file))) {
      await writeSyntheticModelFile(join(dir, file), { ...BITNET_2B4T_SHAPE, weightType: type, tokenizer: byteLevelTokenizer(128256), name: 'synthetic 2B4T-shaped', seed: 1 });
    }
    const mb = statSync(join(dir, file)).size / 1e6;
    const vol = ['-v', `${dir}:/models:ro`];
    for (const cache of ['f32', 'f16']) {
      show(await startOnce(image, `2B4T-shaped ${type} file (${mb.toFixed(0)} MB) on /models, -c 4096 --cache-type ${cache}`, 2, vol, ['--model-path', `/models/${file}`, '-c', '4096', '--cache-type', cache]));
    }
    mkdirSync(join(String(o.out), '..'), { recursive: true });
    writeFileSync(String(o.out), JSON.stringify({ image, sizeBytes: Number(size), starts }, null, 2) + '\n');
    console.log(`wrote ${o.out}`);
  } finally {
    if (built) await podman(['rmi', '-f', image]);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});

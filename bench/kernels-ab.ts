// A/B of the ternary matmuls of two builds in one process: the full pass over 30 layers of 2B4T-shaped
// weights (q, k, v, o, gate, up, down; distinct memory per layer) for N tokens, each build's kernels
// created from its own checkout's dist/, passes interleaved A, B, A, B... so both see the same machine.
// Reports the best CPU time (process.cpuUsage: on 1 thread it counts this process's work only, so
// other load on the machine moves it far less than wall time) and the best wall time, and B/A.
//
//   npm run build && node dist/bench/kernels-ab.js --a DIR_A --b DIR_B [--threads 1] [--tokens 1] [--passes 12]
//
// DIR is a checkout with `npm run build` done (e.g. `git worktree add /tmp/before COMMIT`). With more
// than 1 thread the CPU time includes the pool's spinning: compare wall times then.
import { resolve } from 'node:path';

interface TernaryKernels {
  ternaryMatrix(codes: Int8Array, rows: number, cols: number, scale: number): unknown;
  cloneTernary(m: unknown): unknown;
  allocActs(n: number, dim: number): unknown;
  allocF32(n: number): Float32Array;
  quantize(x: Float32Array, nTok: number, dim: number, acts: unknown): void;
  ternaryMatmul(w: unknown, acts: unknown, nTok: number, out: Float32Array): void;
  dispose(): void;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

async function main(): Promise<void> {
  const dirs = [arg('a', ''), arg('b', '')];
  if (!dirs[0] || !dirs[1]) throw new Error('--a DIR and --b DIR are required (checkouts with npm run build done)');
  const threads = Number(arg('threads', '1')), tokens = Number(arg('tokens', '1')), passes = Number(arg('passes', '12'));
  const HIDDEN = 2560, KV = 640, FFN = 6912;
  let seed = 1;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const shapes: [number, number][] = [[HIDDEN, HIDDEN], [KV, HIDDEN], [KV, HIDDEN], [HIDDEN, HIDDEN], [FFN, HIDDEN], [FFN, HIDDEN], [HIDDEN, FFN]];
  const codes = shapes.map(([r, c]) => Int8Array.from({ length: r * c }, () => Math.floor(rnd() * 3) - 1));
  const x2 = Float32Array.from({ length: tokens * HIDDEN }, () => rnd() - 0.5);
  const x6 = Float32Array.from({ length: tokens * FFN }, () => rnd() - 0.5);
  const sets: { dir: string; k: TernaryKernels; pass: () => void; cpu: number; wall: number }[] = [];
  for (const dir of dirs) {
    const { createKernels } = await import(resolve(dir, 'dist/src/node/kernels.js')) as { createKernels: (o: object) => Promise<TernaryKernels> };
    const k = await createKernels({ path: 'relaxed', threads });
    const mats = shapes.map(([r, c], i) => k.ternaryMatrix(codes[i]!, r, c, 0.5));
    const layers = Array.from({ length: 30 }, (_, l) => (l === 0 ? mats : mats.map((m) => k.cloneTernary(m))));
    const a2 = k.allocActs(tokens, HIDDEN), a6 = k.allocActs(tokens, FFN);
    const X2 = k.allocF32(tokens * HIDDEN), X6 = k.allocF32(tokens * FFN);
    X2.set(x2);
    X6.set(x6);
    k.quantize(X2, tokens, HIDDEN, a2);
    k.quantize(X6, tokens, FFN, a6);
    const out = k.allocF32(tokens * FFN);
    const pass = () => {
      for (const L of layers) for (let i = 0; i < 7; i++) k.ternaryMatmul(L[i], i === 6 ? a6 : a2, tokens, out);
    };
    sets.push({ dir, k, pass, cpu: Infinity, wall: Infinity });
  }
  for (const s of sets) for (let i = 0; i < 2; i++) s.pass(); // warm-up (tier-up, first touch)
  for (let p = 0; p < passes; p++) {
    for (const s of sets) {
      const c0 = process.cpuUsage(), t0 = performance.now();
      s.pass();
      const c = process.cpuUsage(c0);
      s.wall = Math.min(s.wall, performance.now() - t0);
      s.cpu = Math.min(s.cpu, (c.user + c.system) / 1000);
    }
  }
  for (const s of sets) console.log(`${s.dir}: full pass, ${tokens} token(s), ${threads} thread(s): best CPU ${s.cpu.toFixed(1)} ms, best wall ${s.wall.toFixed(1)} ms`);
  console.log(`B/A: CPU ${(sets[1]!.cpu / sets[0]!.cpu).toFixed(3)}, wall ${(sets[1]!.wall / sets[0]!.wall).toFixed(3)}`);
  for (const s of sets) s.k.dispose();
}

main().catch((e: Error) => {
  console.error(`kernels-ab: ${e.message}`);
  process.exit(1);
});

// What a prefix-cache hit costs: copying N cached tokens' keys/values from one sequence's range of
// the KV pool to another's (KVCache.copyFrom), on the 2B4T shape (30 layers, 5 kv heads of 128, f16
// by default: ~77 KB a token). Set it against what reading the same tokens costs (bench/model.ts,
// chat-workload.ts: tens of tokens per second on 2 threads): the reason the prefix cache copies
// rows rather than sharing paged blocks.
//
//   npm run build && node dist/bench/kv-copy.js [--tokens 300] [--type f16|f32] [--repeat 20] [--out FILE]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KVCache, KVPool, type KVCacheType } from '../src/model/kv-cache.js';
import { createKernels } from '../src/node/kernels.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
};
const tokens = Number(opt('--tokens', '300'));
const type = opt('--type', 'f16') as KVCacheType;
const repeat = Number(opt('--repeat', '20'));
const out = opt('--out', 'bench/results/kv-copy.json');
const L = 30, G = 5, HD = 128;

const kernels = await createKernels({ threads: 1 });
const pool = new KVPool(kernels, L, 2 * tokens + 64, G, HD, type);
pool.commit();
const a = new KVCache(pool), b = new KVCache(pool);
a.reserve(tokens, 0);
b.reserve(tokens, 0);
const times: number[] = [];
for (let i = 0; i < repeat; i++) {
  const t0 = performance.now();
  b.copyFrom(a, tokens);
  times.push(performance.now() - t0);
}
times.sort((x, y) => x - y);
const bytes = 2 * L * tokens * G * HD * (type === 'f16' ? 2 : 4);
const median = times[Math.floor(times.length / 2)]!;
const result = { tokens, type, bytes, medianMs: Math.round(median * 1000) / 1000, minMs: Math.round(times[0]! * 1000) / 1000, bytesPerToken: bytes / tokens };
console.log(`copy ${tokens} tokens of 2B4T-shaped ${type} KV (${(bytes / 1e6).toFixed(1)} MB): median ${result.medianMs} ms, best ${result.minMs} ms (${(bytes / tokens / 1024).toFixed(1)} KiB a token)`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2));
kernels.dispose();

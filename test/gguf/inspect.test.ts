// `wf inspect`: in-process through the dispatcher (works under tsx and from dist), and as a real
// `node bin/wf.js inspect ...` process when the build output exists (npm test builds first).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/wf.js';
import { serializeGGUF, metaArray, metaString, metaU32, GGUFValueType as V } from '../../src/gguf/index.js';
import { oracleBytes } from '../helpers/oracle.js';
import { official2b4tQuirksModel } from '../helpers/official-2b4t.js';
import { allTypesMetadata, syntheticTensors } from './synthetic.js';

/** Runs `wf ...` in this process, capturing what it prints. */
async function wf(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'bin', 'wf.js'))) {
    const up = dirname(d);
    if (up === d) throw new Error('repository root not found');
    d = up;
  }
  return d;
}

let dir = '';
const files: Record<string, string> = {};
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wf-inspect-'));
  files.i2s = join(dir, 'tiny-i2_s.gguf');
  await writeFile(files.i2s, oracleBytes('bitnet-tiny-silu-i2_s.gguf'));
  files.vocab = join(dir, 'llama3-vocab.gguf');
  await writeFile(files.vocab, oracleBytes('llama3-vocab.gguf'));
  files.synthetic = join(dir, 'synthetic.gguf');
  await writeFile(files.synthetic, serializeGGUF({
    metadata: allTypesMetadata([['long.array', metaArray(V.UINT32, Array.from({ length: 1000 }, (_, i) => i))], ['long.string', metaString('x'.repeat(5000))], ['general.alignment', metaU32(64)]]),
    tensors: syntheticTensors(),
  }));
  files.notGguf = join(dir, 'not.gguf');
  await writeFile(files.notGguf, 'this is not a model file');
});
test.after(async () => {
  await rm(dir, { recursive: true, force: true });
});

// README shapes of the tiny model, out x in: per layer q 256x256, k 128x256, v 128x256, o 256x256,
// gate 512x256, up 512x256, down 256x512; norms 256, 256, 256, 512; token_embd 288 x 256; output_norm 256
const TERNARY_PARAMS = [256 * 256, 128 * 256, 128 * 256, 256 * 256, 512 * 256, 512 * 256, 256 * 512];
const NORM_PARAMS = [256, 256, 256, 512];
const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);

test('inspect --json on the I2_S oracle file: the README model', async () => {
  const r = await wf('inspect', '--json', files.i2s);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.architecture, 'bitnet');
  assert.equal(j.version, 3);
  assert.deepEqual(j.fileType, { id: 40, name: 'mostly I2_S, bitnet.cpp' });
  assert.equal(j.hyperparameters['bitnet.block_count'], 2);
  assert.equal(j.hyperparameters['bitnet.embedding_length'], 256);
  assert.equal(j.hyperparameters['bitnet.attention.layer_norm_rms_epsilon'], 1e-5);
  assert.equal(j.hyperparameters['bitnet.rope.freq_base'], 500000);
  assert.equal(j.tokenizer.model, 'gpt2');
  assert.equal(j.tokenizer.pre, 'llama-bpe');
  assert.equal(j.tokenizer.vocabSize, 288);
  assert.deepEqual(j.tokenizer.tokenTypes, { normal: 261, control: 27 });
  assert.equal(j.tokenizer.merges, 5);
  assert.deepEqual(j.tokenizer.special.bos, { id: 261, token: '<|begin_of_text|>' });
  assert.deepEqual(j.tokenizer.special.eos, { id: 262, token: '<|end_of_text|>' });
  assert.equal(j.tokenizer.addBos, false);
  assert.deepEqual({ ...j.tokenizer.chatTemplate, warning: undefined }, {
    present: false, length: 0, use: 'bitnet-2b4t', warning: undefined,
    reason: 'the file has no tokenizer.chat_template: using the built-in BitNet b1.58 2B4T template',
  });
  assert.match(j.tokenizer.chatTemplate.warning, /no chat template/);
  assert.deepEqual(j.tokenizer.preTokenizer, { name: 'llama3', reason: 'tokenizer.ggml.pre' });
  assert.equal(j.i2sLayout.default, 'x86');
  assert.match(j.i2sLayout.note, /--i2s-layout arm/);
  assert.equal(j.tensors.length, 24);
  const q = j.tensors.find((t: { name: string }) => t.name === 'blk.0.attn_q.weight');
  assert.deepEqual({ type: q.type, typeId: q.typeId, shape: q.shape, bytes: q.bytes }, { type: 'I2_S', typeId: 36, shape: [256, 256], bytes: 256 * 256 / 4 + 32 });
  const i2sParams = 2 * sum(TERNARY_PARAMS);
  const f32Params = 256 + 2 * sum(NORM_PARAMS);
  assert.deepEqual(j.totals.byType, {
    I2_S: { tensors: 14, params: i2sParams, bytes: i2sParams / 4 + 14 * 32 },
    F32: { tensors: 9, params: f32Params, bytes: f32Params * 4 },
    F16: { tensors: 1, params: 288 * 256, bytes: 288 * 256 * 2 },
  });
  assert.equal(j.totals.params, i2sParams + f32Params + 288 * 256);
  // tensors lie inside the file, in the order of their offsets
  for (const t of j.tensors) assert.ok(t.offset >= j.dataOffset && t.offset + t.bytes <= j.size, t.name);
  // general.quantization_version is not a hyperparameter nor tokenizer key: it lands in metadata
  assert.deepEqual(Object.keys(j.metadata), ['general.quantization_version']);

  const nt = JSON.parse((await wf('inspect', files.i2s, '--json', '--no-tensors')).out);
  assert.equal(nt.tensors, undefined);
  assert.deepEqual(nt.totals, j.totals);
});

test('inspect text output: sections, tokenizer summary, tensor table', async () => {
  const r = await wf('inspect', files.i2s);
  assert.equal(r.code, 0, r.err);
  for (const re of [
    /^architecture +bitnet$/m, /^file type +40 \(mostly I2_S, bitnet\.cpp\)$/m, /^format +GGUF v3, alignment 32/m,
    /^  block_count +2$/m, /^  attention\.layer_norm_rms_epsilon +0\.00001$/m,
    /^  bos +261 "<\|begin_of_text\|>"$/m, /^  vocabulary +288 tokens \(261 normal, 27 control\)$/m, /^  chat template +none$/m,
    /^  blk\.1\.ffn_down\.weight +I2_S +\[512, 256\] +32,800 +[\d,]+$/m, /^  token_embd\.weight +F16 +\[256, 288\]/m,
    /^tensors \(24\)$/m, /^totals: 24 tensors, 1,256,192 parameters/m,
    /^  pre-tokenizer +llama3 \(tokenizer\.ggml\.pre\)$/m, /^  template used +bitnet-2b4t \(the file has no tokenizer\.chat_template/m,
    /^I2_S layout: read as x86 unless --i2s-layout says otherwise .*--i2s-layout x86-interleaved/m,
  ]) assert.match(r.out, re);
  assert.equal(r.out.split('\n').filter((l) => /^  blk\.\d\./.test(l)).length, 22);
  const nt = await wf('inspect', '--no-tensors', files.i2s);
  assert.doesNotMatch(nt.out, /blk\.0\.attn_q/);
  assert.match(nt.out, /^totals: 24 tensors/m);
});

test('inspect: llama3 vocabulary (no tensors, chat template, eot)', async () => {
  const j = JSON.parse((await wf('inspect', '--json', files.vocab)).out);
  assert.equal(j.tokenizer.vocabSize, 128256);
  assert.equal(j.tokenizer.merges, 280147);
  assert.deepEqual(j.tokenizer.tokenTypes, { normal: 128000, control: 256 });
  assert.deepEqual(j.tokenizer.special.eot, { id: 128009, token: '<|eot_id|>' });
  assert.equal(j.tokenizer.addBos, true);
  assert.equal(j.tokenizer.chatTemplate.present, true);
  assert.ok(j.tokenizer.chatTemplate.length > 100);
  assert.deepEqual(j.tensors, []);
  assert.equal(j.totals.params, 0);
  assert.equal(j.fileType, null);
  const text = (await wf('inspect', files.vocab)).out;
  assert.match(text, /^  chat template +present \([\d,]+ characters\)$/m);
  assert.match(text, /^  eot +128009 "<\|eot_id\|>"$/m);
  assert.match(text, /^  template used +file \(the file's tokenizer\.chat_template\)$/m);
  assert.equal(j.i2sLayout, undefined, 'no I2_S tensors, no layout note');
});

test("inspect on a file with the official 2B4T quirks says which pre-tokenizer and template are used, and why", async () => {
  const path = join(dir, 'quirks.gguf');
  await writeFile(path, await official2b4tQuirksModel());
  const j = JSON.parse((await wf('inspect', '--json', '--no-tensors', path)).out);
  assert.equal(j.tokenizer.pre, null);
  assert.equal(j.tokenizer.preTokenizer.name, 'llama3');
  assert.match(j.tokenizer.preTokenizer.reason, /tokenizer\.ggml\.pre missing; the vocabulary is Llama-3's/);
  assert.equal(j.tokenizer.chatTemplate.present, true);
  assert.equal(j.tokenizer.chatTemplate.use, 'bitnet-2b4t');
  assert.match(j.tokenizer.chatTemplate.reason, /placeholder/);
  const text = (await wf('inspect', '--no-tensors', path)).out;
  assert.match(text, /^  pre-tokenizer +llama3 \(tokenizer\.ggml\.pre missing; the vocabulary is Llama-3's/m);
  assert.match(text, /^  template used +bitnet-2b4t \(the file's template is the placeholder/m);
});

test('inspect: other metadata summarized, bigints as strings, custom alignment', async () => {
  const j = JSON.parse((await wf('inspect', '--json', files.synthetic)).out);
  assert.equal(j.alignment, 64);
  assert.equal(j.architecture, 'synthetic');
  // no synthetic.* keys: nothing is a hyperparameter; the t.* keys are other metadata
  assert.deepEqual(j.hyperparameters, {});
  assert.equal(j.tokenizer, null);
  const m = j.metadata;
  assert.equal(m['t.u64.max'], (2n ** 64n - 1n).toString());
  assert.equal(m['t.i64.min'], (-(2n ** 63n)).toString());
  assert.equal(m['t.u64.small'], 42);
  assert.equal(m['t.f32'], 0.1);
  assert.equal(m['t.f32.inf'], '-Infinity');
  assert.deepEqual(m['t.arr.u64'], [0, (2n ** 53n + 1n).toString(), (2n ** 64n - 1n).toString()]);
  assert.deepEqual(m['t.arr.nested.u32'], [[1, 2], [], [3]]);
  assert.deepEqual(m['long.array'], { summary: 'array of 1000 uint32', itemType: 'uint32', length: 1000, head: [0, 1, 2, 3, 4] });
  assert.equal(m['long.string'].length, 5000);
  assert.equal(m['general.alignment'], 64);
  assert.deepEqual(j.tensors.map((t: { type: string }) => t.type), ['F32', 'F16', 'Q8_0', 'TQ2_0', 'TQ1_0', 'I32', 'BF16', 'Q6_K']);
  const text = (await wf('inspect', files.synthetic)).out;
  assert.match(text, /^  long\.array +array of 1000 uint32: \[0,1,2,3,4\] \.\.\.$/m);
  assert.match(text, /^  t\.u64\.max +"18446744073709551615"$/m);
});

test('inspect: errors exit 1 with a message naming the file; usage errors exit 2', async () => {
  const missing = await wf('inspect', join(dir, 'missing.gguf'));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^wf inspect: error: file not found: .*missing\.gguf$/);
  const bad = await wf('inspect', files.notGguf);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^wf inspect: error: .*not\.gguf: not a GGUF file: bad magic "this"/);
  const isDir = await wf('inspect', dir);
  assert.equal(isDir.code, 1);
  assert.match(isDir.err, /not a file/);
  assert.equal((await wf('inspect')).code, 2);
  assert.equal((await wf('inspect', files.i2s, files.vocab)).code, 2);
  assert.equal((await wf('inspect', '--bogus', files.i2s)).code, 2);
  const help = await wf('inspect', '--help');
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: wf inspect FILE\.gguf/);
});

test('node bin/wf.js inspect (a real process; needs the build output in dist/)', async (t) => {
  const root = repoRoot();
  if (!existsSync(join(root, 'dist', 'src', 'cli', 'commands', 'inspect.js'))) {
    t.skip('dist/ not built (npm test builds it)');
    return;
  }
  const node = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'wf.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  const ok = node('inspect', '--json', files.i2s);
  assert.equal(ok.status, 0, ok.stderr);
  const inProcess = JSON.parse((await wf('inspect', '--json', files.i2s)).out);
  assert.deepEqual(JSON.parse(ok.stdout), inProcess);
  const text = node('inspect', files.i2s);
  assert.equal(text.status, 0);
  assert.match(text.stdout, /^tensors \(24\)$/m);
  const bad = node('inspect', files.notGguf);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /not a GGUF file/);
  assert.equal(bad.stdout, '');
  const missing = node('inspect', join(dir, 'missing.gguf'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /file not found/);
});

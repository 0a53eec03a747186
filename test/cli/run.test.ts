// `wf run`, `wf logits` and `wf tokenize` end to end, as a user runs them (needs `npm run build`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { oracleBytes, oracleJson } from '../helpers/oracle.js';

const root = fileURLToPath(new URL('../../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));
const wf = join(root, 'bin/wf.js');
const dir = mkdtempSync(join(tmpdir(), 'wf-cli-'));
const model = join(dir, 'tiny-tq2_0.gguf');
writeFileSync(model, oracleBytes('bitnet-tiny-silu-tq2_0.gguf'));

function wfRun(args: string[]) {
  assert.ok(existsSync(join(root, 'dist/src/cli/wf.js')), 'dist is not built: run `npm run build` first');
  const r = spawnSync(process.execPath, [wf, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, WF_KERNELS: process.env.WF_KERNELS ?? '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('wf run --json: greedy tokens equal llama.cpp\'s on the oracle model', () => {
  const ref = oracleJson<{ prompts: { tokens: number[]; greedy: number[]; greedy_top2_gap: number[] }[] }>('bitnet-tiny-silu-tq2_0.json');
  const p = ref.prompts[1];
  const decisive = p.greedy_top2_gap.findIndex((g) => g < 0.1); // see test/model/oracle.test.ts
  const n = decisive < 0 ? p.greedy.length : decisive;
  assert.ok(n >= 2, 'the reference has decisive steps to compare');
  const r = wfRun(['run', '-m', model, '--tokens', p.tokens.join(','), '-n', String(n), '--temp', '0', '--ignore-eos', '--json', '-t', '1']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.tokens, p.greedy.slice(0, n));
  assert.equal(j.finish_reason, 'length');
  assert.equal(typeof j.text, 'string');
  assert.ok(j.timings.predicted_n >= n);
});

test('wf run --cache-type f16 runs; a bad cache type is refused by name', () => {
  const ok = wfRun(['run', '-m', model, '-p', 'the cat', '-n', '4', '--temp', '0', '--json', '--cache-type', 'f16', '-t', '1']);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(JSON.parse(ok.out).tokens.length, 4);
  const bad = wfRun(['run', '-m', model, '-p', 'the cat', '-n', '4', '--cache-type', 'q4_0']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--cache-type must be f32 or f16, got 'q4_0'/);
});

test('wf run streams text and prints a timing line on stderr', () => {
  const r = wfRun(['run', '-m', model, '-p', 'the cat', '-n', '6', '--temp', '0.7', '--seed', '5']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /prompt \d+ tokens, [\d.]+ tok\/s \| generation \d+ tokens, [\d.]+ tok\/s/);
  const again = wfRun(['run', '-m', model, '-p', 'the cat', '-n', '6', '--temp', '0.7', '--seed', '5']);
  assert.equal(again.out, r.out, 'same seed, same output');
});

test('wf tokenize and wf logits print JSON', () => {
  const t = wfRun(['tokenize', '-m', model, 'the']);
  assert.equal(t.code, 0, t.err);
  // the tiny vocabulary merges "Ġt he" but "the" without a leading space is t + he
  const tok = JSON.parse(t.out).tokens as number[];
  assert.ok(Array.isArray(tok) && tok.length >= 1);
  const l = wfRun(['logits', '-m', model, '--tokens', '261,84', '--all', '-t', '1']);
  assert.equal(l.code, 0, l.err);
  const logits = JSON.parse(l.out).logits as number[][];
  assert.equal(logits.length, 2);
  assert.equal(logits[0].length, 288);
});

test('bad input: missing file, bad flag, token out of range give clear errors and non-zero exit', () => {
  const missing = wfRun(['run', '-m', join(dir, 'nope.gguf'), '-p', 'x']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.err, /model file not found/);
  const flag = wfRun(['run', '-m', model, '--bogus']);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /unknown option '--bogus'/);
  const range = wfRun(['run', '-m', model, '--tokens', '261,9999', '-n', '1']);
  assert.notEqual(range.code, 0);
  assert.match(range.err, /outside the vocabulary/);
  const notGguf = join(dir, 'junk.gguf');
  writeFileSync(notGguf, 'this is not a gguf file at all');
  const junk = wfRun(['run', '-m', notGguf, '-p', 'x']);
  assert.notEqual(junk.code, 0);
  assert.match(junk.err, /not a GGUF file: bad magic/);
});

test('wf run: a prompt longer than the context is a clear error, --truncate keeps the newest tokens', () => {
  const long = Array(600).fill(65).join(','); // the oracle model's context is 512
  const r = wfRun(['run', '-m', model, '--tokens', long, '-n', '3', '--temp', '0', '-t', '1']);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /prompt has 600 tokens but the context holds 512 \(use --truncate/);
  const t = wfRun(['run', '-m', model, '--tokens', long, '-n', '3', '--temp', '0', '--truncate', '--json', '-t', '1']);
  assert.equal(t.code, 0, t.err);
  const j = JSON.parse(t.out);
  assert.equal(j.tokens.length, 3);
  assert.ok(j.timings.prompt_n < 512, `prompt_n ${j.timings.prompt_n}`);
});

test('wf run: a generated control token prints nothing unless --special', () => {
  const args = ['run', '-m', model, '--tokens', '261,84', '-n', '3', '--temp', '0', '--logit-bias', '261+100', '-t', '1'];
  const quiet = wfRun([...args, '--json']);
  assert.equal(quiet.code, 0, quiet.err);
  const q = JSON.parse(quiet.out);
  assert.deepEqual(q.tokens, [261, 261, 261]);
  assert.equal(q.text, '');
  const shown = wfRun([...args, '--special']);
  assert.equal(shown.code, 0, shown.err);
  assert.equal(shown.out, '<|begin_of_text|>'.repeat(3) + '\n');
});

test('wf run --i2s-layout: arm reads the file in that layout (other logits), a bad name is refused', () => {
  const i2s = join(dir, 'tiny-i2_s.gguf');
  writeFileSync(i2s, oracleBytes('bitnet-tiny-silu-i2_s.gguf'));
  const args = ['logits', '-m', i2s, '--tokens', '261,84', '-t', '1'];
  const x86 = wfRun(args);
  const arm = wfRun([...args, '--i2s-layout', 'arm']);
  assert.equal(x86.code, 0, x86.err);
  assert.equal(arm.code, 0, arm.err);
  assert.notEqual(arm.out, x86.out);
  assert.equal(wfRun([...args, '--i2s-layout', 'x86']).out, x86.out, 'x86 is the default');
  const bad = wfRun([...args, '--i2s-layout', 'neon']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--i2s-layout must be one of x86, arm, x86-interleaved, got 'neon'/);
});

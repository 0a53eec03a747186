// --lm-head int8|f16 reaches the model on every command that loads one: wf run, wf chat, wf logits,
// wf perplexity and wf_server (child processes, as a user runs them).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oracleBytes, oracleJson } from '../helpers/oracle.js';
import { finished, listeningUrl, spawnCli } from '../server/spawn.js';

const dir = mkdtempSync(join(tmpdir(), 'wf-lm-head-'));
const model = join(dir, 'tiny-silu-f32.gguf');
writeFileSync(model, oracleBytes('bitnet-tiny-silu-f32.gguf'));
after(() => rmSync(dir, { recursive: true, force: true }));

const wf = async (argv: string[], stdin = '') => {
  const child = spawnCli('wf', argv);
  const done = finished(child);
  child.stdin!.end(stdin);
  return done;
};

function maxAbsDiff(a: number[], b: number[]): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

test('wf logits --lm-head f16: position 0 within 1e-3 of the int8 reference; int8 (the default) is not', async () => {
  const ref = oracleJson<{ models: { silu: { prompts: { tokens: number[]; logits_all: number[][] }[] } } }>('ref-int8-tiny.json');
  const p = ref.models.silu.prompts[2]!;
  const run = async (head?: string) => {
    const r = await wf(['logits', '-m', model, '--tokens', p.tokens.join(','), '--all', '-t', '1', ...(head ? ['--lm-head', head] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).logits as number[][];
  };
  const f16 = await run('f16');
  assert.ok(maxAbsDiff(f16[0]!, p.logits_all[0]!) <= 1e-3);
  const int8 = await run();
  assert.ok(maxAbsDiff(int8[0]!, p.logits_all[0]!) > 1e-2, 'the default head is int8');
  assert.deepEqual(await run('int8'), int8);
});

test('wf run and wf chat take --lm-head and say which head is in use; a bad value is refused by name', async () => {
  for (const head of ['int8', 'f16']) {
    const r = await wf(['run', '-m', model, '-p', 'the sea', '-n', '3', '--temp', '0', '-t', '1', '--lm-head', head]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`\\| lm_head ${head} \\|`));
    const c = await wf(['chat', '-m', model, '-n', '2', '--temp', '0', '-t', '1', '--no-progress', '--lm-head', head, '--chat-template', 'chatml'], 'hello\n');
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stderr, new RegExp(`\\| lm_head ${head}\\]`));
  }
  const args: Record<string, string[]> = { run: ['-p', 'x'], chat: [], logits: ['--tokens', '1'], perplexity: ['-f', model] };
  for (const [cmd, rest] of Object.entries(args)) {
    const bad = await wf([cmd, '-m', model, '--lm-head', 'q4', ...rest]);
    assert.equal(bad.code, 2, `${cmd}: ${bad.stderr}`);
    assert.match(bad.stderr, /--lm-head must be int8 or f16, got 'q4'/);
  }
});

test('wf_server --lm-head f16: the server runs the f16 head (start line, /v1/models meta)', async () => {
  const child = spawnCli('wf_server', ['-m', model, '--port', '0', '-t', '1', '--quiet', '--lm-head', 'f16', '--chat-template', 'chatml']);
  const done = finished(child);
  const url = await listeningUrl(child);
  try {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { meta: { lm_head: string } }[] };
    assert.equal(models.data[0]!.meta.lm_head, 'f16');
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'the', max_tokens: 2, temperature: 0 }) });
    assert.equal(res.status, 200);
  } finally {
    child.kill('SIGTERM');
  }
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\| lm_head f16$/m);
  const bad = await finished(spawnCli('wf_server', ['-m', model, '--lm-head', 'int4']));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--lm-head must be int8 or f16, got 'int4'/);
});

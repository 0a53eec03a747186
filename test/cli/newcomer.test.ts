// What a newcomer tries first on the command line, with the built-in demo model (needs `npm run build`):
// `wf --version`, tokenize and logits without -m, `--top-p 2` named by its flag, `wf run | head`
// without an EPIPE trace, `wf perplexity` with its default context on the demo, and
// `wf tokenize --pieces` showing what the server's /tokenize with_pieces shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModelFile } from '../../src/node/model-file.js';
import { DEMO_MODEL_FILE } from '../../src/node/demo-model.js';
import { testKernels } from '../helpers/kernels.js';
import { postJson, startTestServer } from '../server/helpers.js';

const root = fileURLToPath(new URL('../../' + (import.meta.url.includes('/dist/') ? '../' : ''), import.meta.url));
const wf = join(root, 'bin/wf.js');

function wfRun(args: string[]) {
  assert.ok(existsSync(join(root, 'dist/src/cli/wf.js')), 'dist is not built: run `npm run build` first');
  const r = spawnSync(process.execPath, [wf, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('wf --version prints the package version', () => {
  const r = wfRun(['--version']);
  assert.equal(r.code, 0, r.err);
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
  assert.equal(r.out.trim(), `wf ${version} (wrinklefree)`);
});

test('wf tokenize --pieces (no -m: the demo) shows the pieces /tokenize with_pieces shows', async () => {
  const text = 'Blessed are the meek, café ✓';
  const r = wfRun(['tokenize', '--pieces', '--no-bos', text]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /built-in demo model/);
  const cli = JSON.parse(r.out) as { tokens: number[]; pieces: (string | number[])[] };
  const lm = await loadModelFile(DEMO_MODEL_FILE, { kernels: await testKernels() });
  const srv = await startTestServer(lm, { modelId: 'demo', ctxSize: 64 });
  try {
    const s = await postJson(`${srv.url}/tokenize`, { content: text, with_pieces: true });
    assert.equal(s.status, 200);
    assert.deepEqual(cli.tokens, s.json.tokens.map((t: { id: number }) => t.id));
    assert.deepEqual(cli.pieces, s.json.tokens.map((t: { piece: unknown }) => t.piece));
    // readable text, not the byte-level vocabulary form ('Ġthe'); whole characters join back to the text
    assert.ok(cli.pieces.every((p) => typeof p !== 'string' || !p.includes('Ġ')), JSON.stringify(cli.pieces));
    if (cli.pieces.every((p) => typeof p === 'string')) assert.equal(cli.pieces.join(''), text);
  } finally {
    await srv.close();
    lm.dispose();
  }
});

test('wf logits without -m uses the demo model', () => {
  const r = wfRun(['logits', '--tokens', '1,2,3', '-t', '1']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { tokens: number[]; logits: number[] };
  assert.deepEqual(j.tokens, [1, 2, 3]);
  assert.equal(j.logits.length, 2048);
});

test('a bad sampling value is named by its flag (--top-p), not the sampler\'s option (topP)', () => {
  for (const [flag, value] of [['--top-p', '2'], ['--min-p', '1.5'], ['--repeat-penalty', '0']]) {
    const r = wfRun(['run', '-p', 'x', '-n', '1', flag!, value!]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, new RegExp(`${flag} must be`));
    assert.doesNotMatch(r.err, /topP|minP|repeatPenalty|sampler option/);
  }
});

test('wf run | head: the reader going away ends the run quietly (no EPIPE trace)', async () => {
  const child = spawn(process.execPath, [wf, 'run', '-p', 'In the beginning', '-n', '200', '--ignore-eos', '-t', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // like `head -c 1`: read the first bytes, then close the pipe
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.doesNotMatch(err, /EPIPE|Error|at /, err);
  assert.equal(code, 0, err);
});

test('wf perplexity on the demo without -c: the context defaults to the model\'s 256', () => {
  const r = wfRun(['perplexity', '-f', join(root, 'test/fixtures/perplexity/lighthouse.txt'), '--json', '--no-progress', '-t', '1']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { ppl: number; chunks: number; tokens_scored: number };
  assert.ok(Number.isFinite(j.ppl) && j.ppl > 1, r.out);
  assert.ok(j.chunks >= 1);
  assert.equal(j.tokens_scored, j.chunks * 127); // the second half of each 256-token chunk (its last token predicts nothing)
});


// `wf convert` as a user runs it: spawns `node bin/wf.js convert ...` (needs the build in dist/;
// skipped when it is absent, e.g. under `npx tsx --test` before `npm run build`).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { readGGUF } from '../../src/gguf/index.js';
import { ternaryFromTensor } from '../../src/formats/index.js';
import { buildCheckpoint, tempDir } from './helpers.js';

// repo root from test/convert (tsx) or dist/test/convert (compiled)
const here = fileURLToPath(new URL('.', import.meta.url));
const root = [resolve(here, '../..'), resolve(here, '../../..')].find((d) => existsSync(join(d, 'bin/wf.js')) && existsSync(join(d, 'package.json')));
const wf = root ? join(root, 'bin/wf.js') : undefined;
const built = root !== undefined && existsSync(join(root, 'dist/src/cli/commands/convert.js'));

const out = tempDir('wf-conv-cli-');
after(() => out.cleanup());

test('wf convert CHECKPOINT -o model.gguf --outtype tq2_0 --validate', { skip: built ? false : 'dist/ not built' }, async () => {
  const ck = buildCheckpoint('latent-bf16');
  try {
    const target = join(out.dir, 'model.gguf');
    const r = spawnSync(process.execPath, [wf!, 'convert', ck.dir, '-o', target, '--outtype', 'tq2_0', '--validate'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // not a TTY: plain progress lines, then a summary
    assert.match(r.stderr, /converting \[1\/\d+\] token_embd\.weight/);
    assert.match(r.stderr, /validating \[\d+\/\d+\]/);
    assert.match(r.stderr, /wrote .*model\.gguf: arch bitnet-b1\.58, tq2_0, 24 tensors.*validated/);
    const file = await readGGUF(new Uint8Array(readFileSync(target)));
    const t = file.tensor('blk.1.ffn_gate.weight')!;
    assert.equal(t.type, 35);
    const got = ternaryFromTensor(t.type, await t.read(), t.nElements, t.dims[0]!);
    assert.deepEqual(got.codes, ck.ternary.get('blk.1.ffn_gate.weight')!.codes);

    // --quiet prints nothing; a failure exits 1 with a message and leaves the target untouched
    writeFileSync(target, 'keep');
    const bad = spawnSync(process.execPath, [wf!, 'convert', out.dir, '-o', target, '--quiet'], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^wf convert: error: .*config\.json not found/);
    assert.equal(readFileSync(target, 'utf8'), 'keep');
    // usage errors exit 2
    const usage = spawnSync(process.execPath, [wf!, 'convert', ck.dir, '-o', target, '--outtype', 'q4_0'], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--outtype must be one of i2_s, tq2_0, tq1_0, f16, f32/);
  } finally {
    ck.cleanup();
  }
});

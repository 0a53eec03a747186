// Slot files (--slot-save-path; src/server/slot-files.ts): POST /slots/{id}?action=save|restore|erase,
// and id_slot running a request on the slot asked for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedModel } from '../../src/engine.js';
import { checkFilename } from '../../src/server/slot-files.js';
import { postJson, startTestServer, tinyModel } from './helpers.js';

let lm: LoadedModel;
let lm2: LoadedModel;
const dir = mkdtempSync(join(tmpdir(), 'wf-slots-'));
before(async () => {
  lm = await tinyModel();
  lm2 = await tinyModel({ nLayers: 2 });
  FRANCE = lm.tokenizer.encode('What is the capital of France? Tell me in one word.');
  GERMANY = lm.tokenizer.encode('What is the capital of France? Tell me in two words.');
});
after(() => rmSync(dir, { recursive: true, force: true }));

const BAN = [[262, false], [263, false]];
// prompts as token ids: text that continues a cached sequence keeps that sequence's tokens (prefix-text.ts), ids are what they are
const completion = (url: string, prompt: string | number[], extra: Record<string, unknown> = {}) =>
  postJson(`${url}/completion`, { prompt, n_predict: 6, temperature: 0, logit_bias: BAN, cache_prompt: true, ...extra });
const action = (url: string, slot: number | string, act: string, body?: unknown) =>
  postJson(`${url}/slots/${slot}?action=${act}`, body === undefined ? '' : body);

let FRANCE: number[];
let GERMANY: number[];

test('without --slot-save-path every action is a 501 naming the flag', async () => {
  const srv = await startTestServer(lm, { ctxSize: 256, slots: 2 });
  try {
    const r = await action(srv.url, 0, 'save', { filename: 'x.bin' });
    assert.equal(r.status, 501);
    assert.match(r.json.error.message, /--slot-save-path/);
  } finally {
    await srv.close();
  }
});

test('save, restore into another slot, continue there with id_slot; erase', async () => {
  const srv = await startTestServer(lm, { ctxSize: 256, slots: 2 }, { llama: { slotSavePath: dir } });
  try {
    const first = await completion(srv.url, FRANCE, { id_slot: 1 });
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(first.json.id_slot, 1, 'id_slot runs the request on that slot');
    const held = srv.service.snapshot().slots[1]!.n_cached;
    assert.ok(held > 40);

    const saved = await action(srv.url, 1, 'save', { filename: 'slot1.bin' });
    assert.equal(saved.status, 200, JSON.stringify(saved.json));
    assert.equal(saved.json.n_saved, held);
    assert.equal(saved.json.n_written, statSync(join(dir, 'slot1.bin')).size);
    assert.equal(typeof saved.json.timings.save_ms, 'number');

    // slot 1 moves on to another prompt; slot 0 gets the saved cache
    assert.equal((await completion(srv.url, 'Something else entirely, a long way from capitals.', { id_slot: 1 })).status, 200);
    const restored = await action(srv.url, 0, 'restore', { filename: 'slot1.bin' });
    assert.equal(restored.status, 200, JSON.stringify(restored.json));
    assert.equal(restored.json.n_restored, held);
    assert.equal(restored.json.n_read, saved.json.n_written);
    assert.equal(srv.service.snapshot().slots[0]!.n_cached, held);

    // the next request on slot 0 reads only what differs, and answers what a fresh server answers
    const cont = await completion(srv.url, GERMANY, { id_slot: 0 });
    assert.equal(cont.status, 200);
    assert.equal(cont.json.id_slot, 0);
    let common = 0;
    while (FRANCE[common] === GERMANY[common]) common++;
    assert.ok(cont.json.timings.cache_n >= common - 1, `${common} tokens in common: ${JSON.stringify(cont.json.timings)}`);
    const fresh = await startTestServer(lm, { ctxSize: 256, slots: 1 });
    try {
      const ref = await completion(fresh.url, GERMANY);
      assert.equal(ref.json.timings.cache_n, 0);
      assert.equal(cont.json.content, ref.json.content, 'restored keys/values give the same greedy tokens');
    } finally {
      await fresh.close();
    }

    const erased = await action(srv.url, 0, 'erase');
    assert.equal(erased.status, 200);
    assert.ok(erased.json.n_erased > 0);
    assert.equal(srv.service.snapshot().slots[0]!.n_cached, 0);
    const again = await completion(srv.url, GERMANY, { id_slot: 0, cache_prompt: true });
    assert.equal(again.json.id_slot, 0);
  } finally {
    await srv.close();
  }
});

test('bad requests: file names with a path, unknown files, damaged files, another model\'s file, bad actions and slots', async () => {
  const srv = await startTestServer(lm, { ctxSize: 256, slots: 2 }, { llama: { slotSavePath: dir } });
  try {
    for (const filename of ['../x.bin', 'a/b.bin', '.hidden', '', 'x'.repeat(300)]) {
      const r = await action(srv.url, 0, 'save', { filename });
      assert.equal(r.status, 400, filename);
      assert.equal(r.json.error.param, 'filename');
    }
    assert.equal((await action(srv.url, 0, 'save', {})).json.error.code, 'missing_required_parameter');
    const missing = await action(srv.url, 0, 'restore', { filename: 'nope.bin' });
    assert.equal(missing.status, 404);
    assert.equal((await action(srv.url, 0, 'frobnicate', { filename: 'x.bin' })).status, 400);
    assert.equal((await action(srv.url, 7, 'save', { filename: 'x.bin' })).status, 400);
    assert.equal((await action(srv.url, 'one', 'save', { filename: 'x.bin' })).status, 400);

    assert.equal((await completion(srv.url, FRANCE)).status, 200);
    const ok = await action(srv.url, 0, 'save', { filename: 'good.bin' });
    assert.equal(ok.status, 200);
    const bytes = readFileSync(join(dir, 'good.bin'));
    writeFileSync(join(dir, 'cut.bin'), bytes.subarray(0, bytes.length - 10));
    const cut = await action(srv.url, 1, 'restore', { filename: 'cut.bin' });
    assert.equal(cut.status, 400);
    assert.equal(cut.json.error.code, 'invalid_slot_file');
    writeFileSync(join(dir, 'junk.bin'), 'hello');
    assert.equal((await action(srv.url, 1, 'restore', { filename: 'junk.bin' })).json.error.code, 'invalid_slot_file');
    // the server still serves, slot 1 included
    assert.equal((await completion(srv.url, FRANCE, { id_slot: 1 })).status, 200);
  } finally {
    await srv.close();
  }
  const other = await startTestServer(lm2, { ctxSize: 256, slots: 1 }, { llama: { slotSavePath: dir } });
  try {
    const r = await action(other.url, 0, 'restore', { filename: 'good.bin' });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /n_layer is 1, this model's is 2/);
  } finally {
    await other.close();
  }
});

test('checkFilename', () => {
  assert.equal(checkFilename('slot1.bin'), 'slot1.bin');
  assert.equal(checkFilename('a_b-c.d'), 'a_b-c.d');
  assert.throws(() => checkFilename('..'), /invalid filename/);
  assert.throws(() => checkFilename('x\u0000y'), /invalid filename/);
  assert.throws(() => checkFilename(3), /must be a string/);
});

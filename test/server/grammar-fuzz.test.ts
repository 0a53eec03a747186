// The grammar fuzz harness, short form (the long form is bench/fuzz-grammar.ts): a wf_server
// process on the demo model gets seeded hostile grammars and JSON schemas of every class of issue
// #18 (test/helpers/grammar-cases.ts), four at a time. Each must be answered with a 200 (a mutation
// that happens to be valid) or a 400 naming its field, never a 5xx or a hang; /health answers
// throughout; afterwards a valid json_schema request returns JSON that validates, and SIGTERM
// drains and exits with 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv } from 'ajv';
import { finished, listeningUrl, spawnCli } from './spawn.js';
import { fuzzCases, healthProbe } from '../helpers/grammar-cases.js';
import { postJson } from './helpers.js';

const SEED = 18;
const SCHEMA = { type: 'object', properties: { word: { type: 'string', maxLength: 6 }, n: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['word', 'n'], additionalProperties: false };

test('seeded hostile grammars and schemas: 200 or 400 each, /health answers, then valid JSON, then SIGTERM drains and exits', async () => {
  const child = spawnCli('wf_server', ['--port', '0', '--threads', '1', '-c', '512', '-np', '2', '-q']);
  const done = finished(child, 120000);
  const url = await listeningUrl(child, 60000);
  const probe = healthProbe(url);
  const cases = fuzzCases(SEED, 6, 4);
  const counts: Record<string, Record<number, number>> = {};
  for (let i = 0; i < cases.length; i += 4) {
    await Promise.all(
      cases.slice(i, i + 4).map(async (c) => {
        const r = await postJson(`${url}/v1/completions`, { prompt: 'x', max_tokens: 4, ...c.body });
        const param = 'grammar' in c.body ? 'grammar' : 'json_schema';
        assert.ok(r.status === 200 || r.status === 400, `${c.kind}: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
        if (r.status === 400) assert.equal(r.json.error.param, param, JSON.stringify(r.json));
        (counts[c.kind] ??= {})[r.status] = (counts[c.kind]![r.status] ?? 0) + 1;
      }),
    );
  }
  const worst = await probe.stop();
  // 1 s is the criterion (bench/fuzz-grammar.ts); on this shared, loaded machine a test allows slack; a hang is 5 s
  assert.ok(worst < 2000, `/health took ${worst.toFixed(0)} ms at worst`);
  // every class of malformed grammar was refused
  for (const kind of ['dangling-alternative', 'nested-brackets', 'repeated-syntax-error', 'undefined-rule', 'unknown-type']) {
    assert.ok((counts[kind]?.[400] ?? 0) > 0, `${kind}: ${JSON.stringify(counts[kind])}`);
  }
  const r = await postJson(`${url}/v1/completions`, { prompt: 'And God said', json_schema: SCHEMA, max_tokens: 60, seed: 5 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.ok(new Ajv().validate(SCHEMA, JSON.parse(r.json.choices[0].text)), r.json.choices[0].text);
  child.kill('SIGTERM');
  const end = await done;
  assert.equal(end.code, 0, end.stderr);
});

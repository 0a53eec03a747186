// n > 1 (choices.ts): choices of one prompt on slots of their own, the prompt read once and its
// keys/values shared; whole responses list the choices by index, streamed chunks carry their index;
// usage counts the prompt once; a seed gives each choice its own reproducible sample.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { NO_EOG, postJson, startTestServer, tinyModel } from './helpers.js';

const lm = await tinyModel();
after(() => lm.dispose());

const messages = [
  { role: 'system', content: 'A system prompt long enough that reading it twice would show in the counters.' },
  { role: 'user', content: 'pick a word' },
];

async function counter(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
}

/** the streamed texts by choice index, and the usage chunk */
async function streamed(url: string, body: unknown): Promise<{ texts: string[]; usage: any; finishes: number }> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const texts: string[] = [];
  let usage: any;
  let finishes = 0;
  assert.ok(raw.trimEnd().endsWith('data: [DONE]'));
  for (const ev of raw.split('\n\n')) {
    if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
    const j = JSON.parse(ev.slice(6));
    if (j.usage) usage = j.usage;
    for (const c of j.choices ?? []) {
      texts[c.index] = (texts[c.index] ?? '') + (c.text ?? c.delta?.content ?? '');
      if (c.finish_reason) finishes++;
    }
  }
  return { texts, usage, finishes };
}

test('n greedy chat choices: indexed, identical, usage counts the prompt once, and the prompt is read once', async () => {
  const srv = await startTestServer(lm, { slots: 3 });
  try {
    const r = await postJson(`${srv.base}/chat/completions`, { messages, n: 3, max_tokens: 6, temperature: 0, logit_bias: NO_EOG });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.choices.map((c: any) => c.index), [0, 1, 2]);
    const texts = r.json.choices.map((c: any) => c.message.content);
    assert.equal(new Set(texts).size, 1, 'greedy choices agree');
    const one = await postJson(`${srv.base}/chat/completions`, { messages, max_tokens: 6, temperature: 0, logit_bias: NO_EOG });
    assert.equal(one.json.choices[0].message.content, texts[0]);
    const P = r.json.usage.prompt_tokens;
    assert.equal(one.json.usage.prompt_tokens, P);
    assert.equal(r.json.usage.completion_tokens, 18);
    assert.equal(r.json.usage.total_tokens, P + 18);
    // the first choice read the prompt; the others copied all of it but the last token
    const read = await counter(srv.url, 'wf_prompt_tokens_total');
    assert.equal(read, P + 2 + (P - one.json.usage.prompt_tokens_details.cached_tokens));
  } finally {
    await srv.close();
  }
});

test('streamed choices carry their index; with a seed each choice is reproducible and they differ', async () => {
  const srv = await startTestServer(lm, { slots: 2 });
  try {
    const body = { prompt: 'Once upon a time', n: 2, max_tokens: 12, temperature: 4, top_k: 0, top_p: 1, min_p: 0, seed: 42, logit_bias: NO_EOG };
    const s = await streamed(`${srv.base}/completions`, { ...body, stream: true, stream_options: { include_usage: true } });
    assert.equal(s.texts.length, 2);
    assert.equal(s.finishes, 2);
    assert.equal(s.usage.completion_tokens, 24);
    const whole = await postJson(`${srv.base}/completions`, body);
    assert.deepEqual(whole.json.choices.map((c: any) => c.text), s.texts, 'the same samples, streamed or not');
    // choice i samples as a request of its own with seed + i
    for (const i of [0, 1]) {
      const own = await postJson(`${srv.base}/completions`, { ...body, n: 1, seed: 42 + i });
      assert.equal(own.json.choices[0].text, s.texts[i]);
    }
    assert.notEqual(s.texts[0], s.texts[1]);
    const chat = await streamed(`${srv.base}/chat/completions`, { messages, n: 2, max_tokens: 4, temperature: 0, logit_bias: NO_EOG, stream: true });
    assert.equal(chat.texts.length, 2);
    assert.equal(chat.texts[0], chat.texts[1]);
    assert.equal(chat.finishes, 2);
  } finally {
    await srv.close();
  }
});

test('choices that do not fit the pool at once run one after the other (none holds room while waiting)', async () => {
  // 64 positions: each choice reserves its prompt + max_tokens, so the second waits for the first's room
  const srv = await startTestServer(lm, { slots: 2, ctxSize: 64 });
  try {
    const r = await postJson(`${srv.base}/completions`, { prompt: 'Once upon', n: 2, max_tokens: 40, temperature: 0, logit_bias: NO_EOG });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices.length, 2);
    assert.equal(r.json.choices[0].text, r.json.choices[1].text);
    assert.equal(r.json.usage.completion_tokens, 80);
  } finally {
    await srv.close();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fitPrompt,
  generate,
  generateText,
  type GenerateOptions,
  type GenerationEvent,
  type GenerationResult,
} from '../../src/generate/generate.js';
import { FakeModel, hashed, scripted } from './fake-model.js';

const BOS = 0;
const EOS = 1;
const T = {
  He: 2,
  llo: 3,
  _ST: 4,
  OP: 5,
  bang: 6,
  _world: 7,
  e1: 8, // é = C3 A9
  e2: 9,
  s1: 10, // 😀 = F0 9F 98 80
  s2: 11,
  s3: 12,
  a: 13,
  b: 14,
  EOT: 15,
};
const PIECES: (string | Uint8Array)[] = [
  '',
  '',
  'He',
  'llo',
  ' ST',
  'OP',
  '!',
  ' world',
  Uint8Array.of(0xc3),
  Uint8Array.of(0xa9),
  Uint8Array.of(0xf0, 0x9f),
  Uint8Array.of(0x98),
  Uint8Array.of(0x80),
  'a',
  'b',
  '<eot>',
];
const PROMPT = [BOS, T.a, T.b];

/** A model that greedily produces `script` after the prompt, then EOS. */
function scriptModel(script: number[], contextLength = 64, promptLength = PROMPT.length): FakeModel {
  return new FakeModel({
    pieces: PIECES,
    contextLength,
    eos: [EOS],
    bosToken: BOS,
    logits: scripted((seq) => script[seq.length - promptLength] ?? EOS),
  });
}

async function collect(
  model: FakeModel,
  prompt: number[],
  options: GenerateOptions,
): Promise<{ events: GenerationEvent[]; result: GenerationResult; streamed: string }> {
  const events: GenerationEvent[] = [];
  const it = generate(model, prompt, options);
  let r = await it.next();
  while (!r.done) {
    events.push(r.value);
    r = await it.next();
  }
  const streamed = events.map((e) => e.text).join('');
  const done = events[events.length - 1]!;
  assert.equal(done.type, 'done', 'the last event is done');
  assert.deepEqual(done.type === 'done' ? done.result : null, r.value, 'done event and return value agree');
  assert.equal(streamed, r.value.text, 'the streamed texts add up to the result text');
  return { events, result: r.value, streamed };
}

const greedy: GenerateOptions = { sampler: { temperature: 0 } };

test('greedy generation follows the model and ends on the end-of-generation token', async () => {
  const m = scriptModel([T.He, T.llo, T._world, T.bang]);
  const { events, result } = await collect(m, PROMPT, greedy);
  assert.deepEqual(
    events.map((e) => (e.type === 'token' ? [e.token, e.text] : ['done', e.text])),
    [
      [T.He, 'He'],
      [T.llo, 'llo'],
      [T._world, ' world'],
      [T.bang, '!'],
      ['done', ''],
    ],
  );
  assert.equal(result.finishReason, 'stop');
  assert.deepEqual(result.detail, { type: 'stopToken', token: EOS });
  assert.deepEqual(result.tokens, [T.He, T.llo, T._world, T.bang], 'the stop token is not an output token');
  assert.equal(result.text, 'Hello world!');
  assert.equal(result.timings.promptTokens, 3);
  assert.equal(result.timings.generatedTokens, 5, 'sampled tokens include the stop token');
  for (const v of Object.values(result.timings)) assert.ok(Number.isFinite(v) && v >= 0);
  // The model saw the prompt at 0, then each output token at the next position; never the EOS.
  assert.deepEqual(m.calls, [
    { tokens: PROMPT, startPos: 0 },
    { tokens: [T.He], startPos: 3 },
    { tokens: [T.llo], startPos: 4 },
    { tokens: [T._world], startPos: 5 },
    { tokens: [T.bang], startPos: 6 },
  ]);
  assert.equal(m.resets, 1);
});

test('extra stop tokens from the request', async () => {
  const { result } = await collect(scriptModel([T.He, T.EOT, T.llo]), PROMPT, { ...greedy, stopTokens: [T.EOT] });
  assert.deepEqual(result.detail, { type: 'stopToken', token: T.EOT });
  assert.equal(result.text, 'He');
});

test('a stop string split across tokens is cut and never streamed', async () => {
  const m = scriptModel([T.He, T.llo, T._ST, T.OP, T.bang, T._world]);
  const { events, result } = await collect(m, PROMPT, { ...greedy, stop: ['STOP'] });
  const texts = events.map((e) => e.text);
  assert.deepEqual(texts, ['He', 'llo', ' ', '', '']);
  assert.ok(!texts.some((t) => t.includes('S')), 'no part of the stop string was streamed');
  assert.equal(result.finishReason, 'stop');
  assert.deepEqual(result.detail, { type: 'stopString', stop: 'STOP' });
  assert.equal(result.text, 'Hello ');
  assert.deepEqual(result.tokens, [T.He, T.llo, T._ST, T.OP]);
  // A held-back false start is released when generation ends for another reason.
  const held = await collect(scriptModel([T.He, T._ST]), PROMPT, { ...greedy, stop: 'STOP' });
  assert.deepEqual(held.events.map((e) => e.text), ['He', ' ', 'ST']);
  assert.equal(held.result.finishReason, 'stop');
  assert.equal(held.result.text, 'He ST');
});

test('max tokens ends with length', async () => {
  const m = scriptModel([T.a, T.b, T.a, T.b, T.a]);
  const { result } = await collect(m, PROMPT, { ...greedy, maxTokens: 3, stop: ['ab!'] });
  assert.equal(result.finishReason, 'length');
  assert.deepEqual(result.detail, { type: 'maxTokens', maxTokens: 3 });
  assert.equal(result.text, 'aba', 'text held for a possible stop string is released at the end');
  assert.equal(m.calls.length, 3, 'the last token is not evaluated');
  const zero = await collect(scriptModel([T.a]), PROMPT, { ...greedy, maxTokens: 0 });
  assert.deepEqual(zero.result.tokens, []);
  assert.equal(zero.result.finishReason, 'length');
});

test('reaching the end of the context ends with length / context', async () => {
  const m = scriptModel(Array(50).fill(T.a), 8);
  const { result } = await collect(m, PROMPT, greedy);
  assert.equal(result.finishReason, 'length');
  assert.deepEqual(result.detail, { type: 'context', contextLength: 8 });
  assert.equal(result.tokens.length, 5, 'prompt + output fill the context exactly');
  assert.equal(result.text, 'aaaaa');
  // (The fake model throws if asked for a position past the context.)
  const full = await collect(scriptModel([T.a], 3), PROMPT, greedy);
  assert.deepEqual(full.result.detail, { type: 'context', contextLength: 3 });
  assert.deepEqual(full.result.tokens, []);
});

test('a prompt longer than the context is an error; truncate: start keeps BOS and the newest tokens', async () => {
  const long = [BOS, ...Array.from({ length: 19 }, (_, i) => (i % 2 ? T.a : T.b))];
  await assert.rejects(
    generateText(scriptModel([], 16), long, greedy),
    /prompt has 20 tokens but the context holds 16/,
  );
  const m = scriptModel([T.He, T.llo, T.bang, T.bang, T.bang], 16, 12);
  const { result } = await collect(m, long, { ...greedy, truncate: 'start', maxTokens: 4 });
  // Room for min(maxTokens 4, 16 / 2) output tokens: 12 prompt tokens = BOS + the newest 11.
  assert.deepEqual(m.calls[0], { tokens: [BOS, ...long.slice(-11)], startPos: 0 });
  assert.equal(result.truncatedPromptTokens, 8);
  assert.equal(result.text, 'Hello!!');
  assert.equal(result.finishReason, 'length');
  // Without BOS at the start, only the newest tokens; without maxTokens, half the context.
  assert.deepEqual(fitPrompt([5, 6, 7, 8, 9], 4, { truncate: 'start' }), [8, 9]);
  assert.deepEqual(fitPrompt([0, 6, 7, 8, 9], 4, { truncate: 'start', bosToken: 0 }), [0, 9]);
  assert.deepEqual(fitPrompt([5, 6], 4, {}), [5, 6]);
  assert.throws(() => fitPrompt([0, 1, 2], 1, { truncate: 'start', bosToken: 0 }), /too small/);
  await assert.rejects(generateText(scriptModel([]), [], greedy), /prompt is empty/);
  await assert.rejects(generateText(scriptModel([]), [0, 99], greedy), /prompt token 99 at index 1 is outside/);
  await assert.rejects(generateText(scriptModel([]), PROMPT, { maxTokens: -1 }), /maxTokens must be an integer >= 0/);
});

test('UTF-8 characters split across tokens stream whole, once complete', async () => {
  const m = scriptModel([T.a, T.e1, T.e2, T.s1, T.s2, T.s3, T.b]);
  const { events, result } = await collect(m, PROMPT, greedy);
  assert.deepEqual(events.map((e) => e.text), ['a', '', 'é', '', '', '😀', 'b', '']);
  assert.equal(result.text, 'aé😀b');
  // A stop string made of a multi-byte character split across tokens.
  const s = await collect(scriptModel([T.a, T.s1, T.s2, T.s3, T.b]), PROMPT, { ...greedy, stop: ['😀'] });
  assert.equal(s.result.text, 'a');
  assert.deepEqual(s.result.detail, { type: 'stopString', stop: '😀' });
  // A dangling partial character at the end becomes U+FFFD, once.
  const d = await collect(scriptModel([T.a, T.s1, T.s2]), PROMPT, { ...greedy, maxTokens: 3 });
  assert.equal(d.result.text, 'a\uFFFD');
});

test('abort: stops promptly with finishReason abort and the text so far (no throw)', async () => {
  // The consumer aborts after the 3rd token event.
  const ac2 = new AbortController();
  const m2 = scriptModel(Array(40).fill(T.a));
  const seen: GenerationEvent[] = [];
  const it = generate(m2, PROMPT, { ...greedy, signal: ac2.signal, stop: ['ab'] });
  let r = await it.next();
  while (!r.done) {
    seen.push(r.value);
    if (seen.length === 3) ac2.abort();
    r = await it.next();
  }
  assert.equal(r.value.finishReason, 'abort');
  assert.deepEqual(r.value.detail, { type: 'abort' });
  assert.equal(r.value.tokens.length, 3);
  assert.equal(r.value.text, 'aaa', 'the held-back "a" is released');
  assert.equal(seen.map((e) => e.text).join(''), 'aaa');
  assert.equal(m2.calls.length, 3, 'no model call after the abort');

  // Abort from inside a model call (e.g. a timer): the loop notices right after it.
  const ac3 = new AbortController();
  const m3 = scriptModel(Array(40).fill(T.a));
  m3.onEvaluate = (c) => {
    if (c.startPos === 5) ac3.abort();
  };
  const r3 = await generateText(m3, PROMPT, { ...greedy, signal: ac3.signal });
  assert.equal(r3.finishReason, 'abort');
  assert.equal(r3.tokens.length, 3);

  // Already aborted: nothing runs.
  const m4 = scriptModel([T.a]);
  const r4 = await generateText(m4, PROMPT, { ...greedy, signal: AbortSignal.abort() });
  assert.equal(r4.finishReason, 'abort');
  assert.equal(m4.calls.length, 0);

  // Aborted between prompt batches.
  const ac5 = new AbortController();
  const m5 = scriptModel([T.a]);
  m5.onEvaluate = () => ac5.abort();
  const r5 = await generateText(m5, [BOS, T.a, T.b, T.a, T.b], { ...greedy, signal: ac5.signal, promptBatchSize: 2 });
  assert.equal(r5.finishReason, 'abort');
  assert.deepEqual(m5.calls, [{ tokens: [BOS, T.a], startPos: 0 }]);
  assert.equal(r5.timings.promptTokens, 2);
});

test('prompt batches are evaluated at consecutive positions', async () => {
  const m = scriptModel([T.He], 64, 7);
  const prompt = [BOS, T.a, T.b, T.a, T.b, T.a, T.b];
  const { result } = await collect(m, prompt, { ...greedy, promptBatchSize: 3 });
  assert.deepEqual(
    m.calls.map((c) => [c.startPos, c.tokens.length]),
    [
      [0, 3],
      [3, 3],
      [6, 1],
      [7, 1],
    ],
  );
  assert.equal(result.text, 'He');
});

test('sampling through the loop: same seed reproduces, different seeds differ, logprobs reported', async () => {
  const model = (): FakeModel =>
    new FakeModel({ pieces: Array.from({ length: 40 }, (_, i) => `<${i}>`), contextLength: 64, logits: hashed });
  const opts = (seed: number): GenerateOptions => ({ sampler: { temperature: 1, topK: 20, seed }, maxTokens: 30 });
  const a = await generateText(model(), [3, 4], opts(1));
  const b = await generateText(model(), [3, 4], opts(1));
  const c = await generateText(model(), [3, 4], opts(2));
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.seed, 1);
  assert.notDeepEqual(a.tokens, c.tokens);
  assert.equal(a.text, a.tokens.map((t) => `<${t}>`).join(''));
  // Greedy through the loop = argmax of the hashed logits at each step.
  const g = await generateText(model(), [3, 4], { ...greedy, maxTokens: 10 });
  const seq = [3, 4];
  for (const t of g.tokens) {
    const l = hashed(seq, 40);
    assert.equal(t, l.indexOf(Math.max(...l)));
    seq.push(t);
  }
  // Logprobs: the chosen token's and the top 3, consistent with the softmax of the logits.
  const { events } = await collect(model(), [3, 4], { ...greedy, maxTokens: 2, logprobs: 3 });
  const first = events[0]!;
  assert.ok(first.type === 'token' && first.logprobs);
  const l = hashed([3, 4], 40);
  const z = Math.log([...l].reduce((s, x) => s + Math.exp(x), 0));
  assert.ok(Math.abs(first.logprobs.logprob - (l[first.token]! - z)) < 1e-5);
  assert.equal(first.logprobs.top.length, 3);
  assert.equal(first.logprobs.top[0]!.token, first.token, 'greedy picks the top token');
  // A repeat penalty is fed the history (prompt + output): a huge frequency penalty on a model
  // that always prefers token 5 makes it pick 5 only once.
  const rep = new FakeModel({ pieces: PIECES, contextLength: 64, logits: scripted(() => T.OP) });
  const rr = await generateText(rep, [BOS], { sampler: { temperature: 0, frequencyPenalty: 100 }, maxTokens: 4 });
  assert.equal(rr.tokens.filter((t) => t === T.OP).length, 1);
});

test('control tokens count but print no text unless special; they still stop generation as stop tokens', async () => {
  // <eot> (15) is a control token here but not end-of-generation, so it is generated like any other
  const withControl = (script: number[]) => Object.assign(scriptModel(script), { isControl: (id: number) => id === T.EOT || id === BOS || id === EOS });
  const plain = await collect(withControl([T.He, T.EOT, T.llo]), PROMPT, { ...greedy, logprobs: 0 });
  assert.equal(plain.result.text, 'Hello');
  assert.deepEqual(plain.result.tokens, [T.He, T.EOT, T.llo], 'the control token is an output token');
  const ev = plain.events.find((e) => e.type === 'token' && e.token === T.EOT);
  assert.ok(ev && ev.type === 'token' && ev.text === '' && ev.logprobs !== undefined, 'an event with no text and its logprob');
  assert.equal(plain.result.timings.generatedTokens, 4);
  const shown = await collect(withControl([T.He, T.EOT, T.llo]), PROMPT, { ...greedy, special: true });
  assert.equal(shown.result.text, 'He<eot>llo');
  // without isControl (a model that cannot tell) every token's bytes are text, as before
  const unknown = await collect(scriptModel([T.He, T.EOT, T.llo]), PROMPT, greedy);
  assert.equal(unknown.result.text, 'He<eot>llo');
  const stopped = await collect(withControl([T.He, T.EOT, T.llo]), PROMPT, { ...greedy, stopTokens: [T.EOT] });
  assert.equal(stopped.result.text, 'He');
  assert.deepEqual(stopped.result.detail, { type: 'stopToken', token: T.EOT });
});

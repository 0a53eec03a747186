// Chat templates render under a budget (template-budget.ts): a template that loops for ever, asks range()
// for 10^12 items, grows its output without end or recurses without end fails with a TemplateBudgetError
// naming the limit, in about its time budget, and leaves the renderer usable for the next call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeChat, probeChatTemplate, renderChat } from '../../src/tokenizer/chat-template.js';
import { MAX_RANGE, TemplateBudgetError } from '../../src/tokenizer/template-budget.js';
import { llama3Tokenizer } from './helpers.js';

const tok = await llama3Tokenizer();
const chat = [{ role: 'user', content: 'Hi' }];

/** Runs fn, expecting a TemplateBudgetError for `limit`; returns the milliseconds it took. */
function budgetFailure(limit: string, fn: () => unknown): number {
  const t0 = performance.now();
  assert.throws(fn, (e: unknown) => e instanceof TemplateBudgetError && e.limit === limit);
  return performance.now() - t0;
}

test('a template that loops 10^10 times stops at its time budget', () => {
  const loop = '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x';
  const ms = budgetFailure('time', () => renderChat(tok, chat, { template: loop, timeMs: 200 }));
  assert.ok(ms < 2000, `took ${ms} ms for a 200 ms budget`);
});

test('range(10**12) is refused before anything is allocated (no fatal V8 error)', () => {
  budgetFailure('range', () => renderChat(tok, chat, { template: '{% for i in range(10**12) %}x{% endfor %}' }));
  budgetFailure('range', () => renderChat(tok, chat, { template: `{{ range(${MAX_RANGE + 1}) | length }}` }));
  assert.equal(renderChat(tok, chat, { template: `{{ range(${MAX_RANGE}) | length }}` }), String(MAX_RANGE));
  assert.equal(renderChat(tok, chat, { template: '{{ range(1, 10, 3) | join(",") }}|{{ range(5, 0, -2) | join(",") }}' }), '1,4,7|5,3,1');
});

test('output that doubles without end stops at the output budget', () => {
  const grow = "{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}";
  budgetFailure('output', () => renderChat(tok, chat, { template: grow }));
});

test('a list that doubles without end stops at the list budget', () => {
  const grow = '{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}';
  budgetFailure('list', () => renderChat(tok, chat, { template: grow }));
});

test('a macro that calls itself for ever fails as too deep, not as a crash', () => {
  const deep = '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}';
  assert.throws(() => renderChat(tok, chat, { template: deep }), /chat template/);
});

test("a loop over one message's content fails that render alone, within the budget; the next renders", () => {
  const perChar = "{% for m in messages %}{% for c in range(m['content'] | length) %}{% for i in range(100000) %}{% endfor %}{% endfor %}{% endfor %}ok";
  const big = [{ role: 'user', content: 'x'.repeat(100_000) }];
  const ms = budgetFailure('time', () => encodeChat(tok, big, { template: perChar, timeMs: 200 }));
  assert.ok(ms < 2000, `took ${ms} ms for a 200 ms budget`);
  assert.equal(renderChat(tok, [{ role: 'user', content: '' }], { template: perChar }), 'ok');
  assert.ok(encodeChat(tok, chat).length > 3);
});

test('probeChatTemplate: a looping template is a clear start-up error naming its origin and the budget', () => {
  const loop = '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}';
  assert.throws(() => probeChatTemplate(tok, loop, 100), /the chat template \(override\) cannot be used: .*time budget of 100 ms/);
  probeChatTemplate(tok); // the file's template is fine
});

test('strftime_now and raise_exception still work', () => {
  const year = String(new Date().getFullYear());
  assert.equal(renderChat(tok, chat, { template: "{{ strftime_now('%Y') }}" }), year);
  assert.throws(() => renderChat(tok, chat, { template: "{{ raise_exception('no system role') }}" }), /no system role/);
});

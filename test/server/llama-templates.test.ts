// Chat templates from the wild as llama-server renders them: built-in names, plain strings,
// Jinja2's forgiving select filters, firefunction's variables, --reasoning off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NAMED_TEMPLATES, resolveChatTemplate } from '../../src/server/chat-templates.js';
import { closeThinking, gmtDateTime, templateVariables } from '../../src/server/template-vars.js';
import { jinja2Compatible } from '../../src/tokenizer/jinja-compat.js';
import { renderChat } from '../../src/tokenizer/chat-template.js';
import { byteLevelTokenizer } from '../../src/model/synthetic.js';
import { tinyModel } from './helpers.js';

const lm = await tinyModel({ tokenizer: byteLevelTokenizer(264) });
const render = (template: string, vars?: Record<string, unknown>, messages = [{ role: 'system', content: 'You are a test.' }, { role: 'user', content: 'Hi there' }]) =>
  renderChat(lm.tokenizer, messages, { template, variables: vars });

test('command-r: the built-in name renders llama.cpp\'s Command R format', () => {
  assert.equal(
    render(resolveChatTemplate('command-r')),
    '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a test.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>',
  );
  assert.ok('command-r' in NAMED_TEMPLATES);
});

test('a plain string is a template that renders itself; one word or a path that is no file is an error', () => {
  assert.equal(render(resolveChatTemplate('This is not a chat template, it is')), 'This is not a chat template, it is');
  assert.throws(() => resolveChatTemplate('chatmI'), /is not a known name/);
  assert.throws(() => resolveChatTemplate('/no/such/file.jinja'), /is not a file/);
});

test('select filters on none render nothing, as in Jinja2 (functionary v3.1 does tools | selectattr with tools none)', () => {
  const src = '{%- if not tools is defined -%}{%- set tools = none -%}{%- endif -%}{%- set n = tools | selectattr("type", "equalto", "code_interpreter") | list | length -%}[{{ n }}]';
  assert.match(jinja2Compatible(src), /\(tools or \[\]\) \| selectattr/);
  assert.equal(render(src), '[0]');
  assert.equal(render(src, { tools: [{ type: 'code_interpreter' }, { type: 'function' }] }), '[1]');
  // a filter after another filter is left alone
  assert.equal(jinja2Compatible('{{ a | map("x") | select }}'), '{{ a | map("x") | select }}');
});

test('firefunction-v2 variables: datetime (%b %d %Y %H:%M:%S GMT) and functions (the tools as JSON, "" without)', () => {
  assert.equal(gmtDateTime(new Date(Date.UTC(2026, 0, 5, 7, 8, 9))), 'Jan 05 2026 07:08:09 GMT');
  const v = templateVariables(undefined);
  assert.equal(v.functions, '');
  assert.equal(JSON.parse(templateVariables({ tools: [{ a: 1 }] }).functions as string)[0].a, 1);
  assert.equal(templateVariables({ datetime: 'mine' }).datetime, 'mine', 'a request\'s own variable wins');
  // firefunction-v2's system prompt, in short: it adds both with +, which fails on undefined values
  const now = new Date();
  const src = "{%- set suffix = 'Available functions as JSON spec:' + '\\n' + functions + '\\nToday is ' + datetime + '.' -%}{{ suffix }}";
  assert.equal(render(src, templateVariables(undefined, 'auto', now)), `Available functions as JSON spec:\n\nToday is ${gmtDateTime(now)}.`);
});

test('--reasoning off: enable_thinking false, and an open <think> at the end is closed', () => {
  assert.equal(templateVariables(undefined, 'off').enable_thinking, false);
  assert.equal(templateVariables(undefined, 'auto').enable_thinking, true);
  assert.equal(templateVariables(undefined, 'auto', new Date(Date.UTC(2026, 11, 7))).date_string, '07 Dec 2026');
  assert.equal(closeThinking('<｜Assistant｜><think>\n', 'off'), '<｜Assistant｜><think>\n</think>');
  assert.equal(closeThinking('<｜Assistant｜><think>\n', 'on'), '<｜Assistant｜><think>\n');
  assert.equal(closeThinking('assistant\n', 'off'), 'assistant\n');
});

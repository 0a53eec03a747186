// `wf chat`: the loop on in-memory streams (turns, KV reuse across turns, /reset, /exit, context
// overflow) and the command itself with piped stdin in a child process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { chatLoop, replyRoom } from '../../src/cli/commands/chat.js';
import { encodeChat } from '../../src/tokenizer/chat-template.js';
import { NO_EOG, tinyModel, tinyModelBytes } from '../server/helpers.js';
import { finished, spawnCli } from '../server/spawn.js';

const lm = await tinyModel();
const dir = mkdtempSync(join(tmpdir(), 'wf-chat-'));
after(() => {
  lm.dispose();
  rmSync(dir, { recursive: true, force: true });
});

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

function input(text: string): PassThrough {
  const p = new PassThrough();
  p.end(text);
  return p;
}

const sampler = { temperature: 0, logitBias: NO_EOG };

test('two turns, then end of input: replies streamed, history kept, earlier turns reused from the cache', async () => {
  const session = lm.createSession({ ctxSize: 256 });
  const out = new Collect();
  const err = new Collect();
  const r = await chatLoop({ session, input: input('hello\nand a second question\n'), output: out, err, system: 'Be brief.', sampler, maxTokens: 5 });
  assert.equal(r.turns, 2);
  assert.deepEqual(r.messages.map((m) => m.role), ['system', 'user', 'assistant', 'user', 'assistant']);
  assert.equal(r.messages[1]!.content, 'hello');
  assert.equal(r.messages[3]!.content, 'and a second question');
  const [a1, a2] = [r.messages[2]!.content, r.messages[4]!.content];
  assert.equal(out.text, `${a1}\n${a2}\n`);
  // the first reply is what a fresh session says to the same conversation
  const fresh = lm.createSession({ ctxSize: 256 });
  const first = encodeChat(lm.tokenizer, r.messages.slice(0, 2));
  assert.equal((await fresh.complete(first, { maxTokens: 5, sampler })).text, a1);
  // timing lines: the second turn found the first turn's prompt in the KV cache
  // the template in use is named first (the tiny model has none: a warning says the built-in is used)
  assert.match(err.text, /^\[warning: the model file has no chat template; using the built-in BitNet b1\.58 2B4T format/);
  assert.match(err.text, /^\[chat template: bitnet-2b4t \(the file has no tokenizer\.chat_template/m);
  const lines = err.text.trim().split('\n').filter((l) => l.startsWith('[turn '));
  assert.equal(lines.length, 2, err.text);
  assert.match(lines[0]!, /^\[turn 1 \| prompt \d+ tokens \(0 cached/);
  const m = /^\[turn 2 \| prompt (\d+) tokens \((\d+) cached, (\d+) evaluated\)/.exec(lines[1]!);
  assert.ok(m, lines[1]);
  assert.ok(Number(m[2]) >= first.length, `turn 2 reused ${m[2]} tokens, the first prompt had ${first.length}`);
  assert.equal(Number(m[2]) + Number(m[3]), Number(m[1]));
  assert.match(lines[1]!, /reply 5 tokens, [\d.]+ tok\/s \| finish: length\]$/);
});

test('/reset starts over (system prompt kept); /exit stops reading', async () => {
  const session = lm.createSession({ ctxSize: 256 });
  const err = new Collect();
  const r = await chatLoop({ session, input: input('one\n\n/reset\ntwo\n/exit\nthree\n'), output: new Collect(), err, system: 'S', sampler, maxTokens: 2 });
  assert.equal(r.turns, 2);
  assert.deepEqual(r.messages.map((m) => [m.role, m.role === 'assistant' ? '' : m.content]), [['system', 'S'], ['user', 'two'], ['assistant', '']]);
  assert.match(err.text, /\[conversation reset\]/);
});

test('a conversation that outgrows the context drops its oldest turns', async () => {
  const session = lm.createSession({ ctxSize: 80 });
  const err = new Collect();
  const lines = ['first line', 'second one', 'third line', 'fourth one', `${'x'.repeat(100)}`].join('\n') + '\n';
  const r = await chatLoop({ session, input: input(lines), output: new Collect(), err, system: 'S', sampler, maxTokens: 4 });
  assert.equal(r.turns, 4, err.text);
  assert.match(err.text, /\[context full: dropped the \d+ oldest message\(s\)\]/);
  assert.match(err.text, /this message alone is \d+ tokens, the context holds 80: not sent/);
  assert.equal(r.messages[0]!.role, 'system');
  assert.ok(encodeChat(lm.tokenizer, r.messages).length <= 80);
});

test('wf chat with piped stdin: two turns, then EOF', async () => {
  const modelPath = join(dir, 'tiny.gguf');
  writeFileSync(modelPath, tinyModelBytes());
  const child = spawnCli('wf', ['chat', '-m', modelPath, '-t', '1', '--temp', '0', '-n', '3', '--system', 'Be brief.', '--no-progress']);
  const done = finished(child);
  child.stdin!.end('hi\nhow are you?\n');
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  const turns = r.stderr.split('\n').filter((l) => l.startsWith('[turn '));
  assert.equal(turns.length, 2, r.stderr);
  assert.match(turns[1]!, /^\[turn 2 \| prompt \d+ tokens \([1-9]\d* cached/);
  assert.ok(r.stdout.length >= 2 && r.stdout.endsWith('\n'));
});

/** A Writable that calls `onWrite` after each write. */
class Watch extends Collect {
  constructor(private readonly onWrite: (text: string) => void) {
    super();
  }
  override _write(chunk: Buffer, enc: string, cb: () => void): void {
    super._write(chunk, enc, cb);
    this.onWrite(this.text);
  }
}

test('Ctrl-C during a reply stops it and the chat goes on; Ctrl-C at the prompt quits', async () => {
  const session = lm.createSession({ ctxSize: 512 });
  const interrupts = new EventEmitter();
  const err = new Collect();
  const lines = new PassThrough(); // stays open, as a terminal does
  let stops = 0;
  const out = new Watch((text) => {
    // the first reply: interrupted after its first piece of text
    if (stops === 0 && text.length > 0) {
      stops++;
      interrupts.emit('interrupt');
    }
  });
  lines.write('first\n');
  const loop = chatLoop({ session, input: lines, output: out, err, sampler, maxTokens: 200, interrupts });
  await waitUntil(() => /\[turn 1 /.test(err.text));
  lines.write('second\n');
  await waitUntil(() => /\[turn 2 /.test(err.text));
  interrupts.emit('interrupt'); // at the prompt: quit
  const r = await loop;
  assert.equal(r.turns, 2);
  assert.match(err.text, /\[reply stopped\]/);
  assert.match(err.text, /\[turn 1 .*finish: abort\]/);
  assert.match(err.text, /\[turn 2 .*reply 200 tokens.*finish: length\]/);
  // the stopped reply stays in the conversation as far as it was written
  assert.ok(r.messages[1]!.content.length > 0 && lm.tokenizer.encode(r.messages[1]!.content, { addBos: false }).length < 200);
});

test('after dropping old turns the prompt leaves room for the reply (-n, or a quarter of the context)', async () => {
  const session = lm.createSession({ ctxSize: 96 });
  const err = new Collect();
  const text = ['one two three', 'four five six', 'seven eight', 'nine ten', 'eleven twelve'].join('\n') + '\n';
  const r = await chatLoop({ session, input: input(text), output: new Collect(), err, system: 'S', sampler, maxTokens: 20 });
  assert.equal(r.turns, 5, err.text);
  assert.match(err.text, /dropped/);
  // every reply got its 20 tokens: none was cut by the context end
  const replies = err.text.split('\n').filter((l) => l.startsWith('[turn '));
  for (const l of replies) assert.match(l, /reply 20 tokens/, l);
  assert.equal(replyRoom(96), 24);
  assert.equal(replyRoom(4096), 512);
  assert.equal(replyRoom(4096, 100), 100);
});

test('wf chat: SIGINT during a reply stops it, SIGINT at the prompt exits 0', async () => {
  const modelPath = join(dir, 'tiny-sigint.gguf');
  writeFileSync(modelPath, tinyModelBytes({ contextLength: 4096 }));
  const child = spawnCli('wf', ['chat', '-m', modelPath, '-t', '1', '--temp', '0', '-n', '3000', '-c', '4096', '-l', '262-inf', '-l', '263-inf', '--no-progress']);
  const done = finished(child);
  let out = '';
  let errText = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  child.stdin!.write('hello\n');
  await waitUntil(() => out.length > 0, 60_000);
  child.kill('SIGINT');
  await waitUntil(() => /\[turn 1 /.test(errText), 60_000);
  child.kill('SIGINT');
  const r = await done;
  assert.equal(r.code, 0, errText);
  assert.match(errText, /\[reply stopped\]/);
  assert.match(errText, /\[turn 1 .*finish: abort\]/);
});

async function waitUntil(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

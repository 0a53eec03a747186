// The chat page's backend against a stand-in server on 127.0.0.1: what it asks for (reasoning_format
// 'none': the page shows thinking as the model writes it) and how it reads the stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpChatBackend } from '../../src/web/chat/http-backend.js';

test('chat page backend: asks for unsplit thinking and streams the content it gets', async () => {
  let body: Record<string, unknown> = {};
  const srv = createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      body = JSON.parse(raw) as Record<string, unknown>;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      send({ choices: [{ delta: { role: 'assistant', content: null } }] });
      send({ choices: [{ delta: { content: '<think>hm</think>' } }] });
      send({ choices: [{ delta: { content: 'Hi' }, finish_reason: 'stop' }] });
      send({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2 } });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  try {
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
    const text: string[] = [];
    const stats = await new HttpChatBackend(() => '', base).reply([{ role: 'user', content: 'Hello' }],
      { temperature: 0, maxTokens: 4 }, new AbortController().signal, (t) => text.push(t));
    assert.equal(body.reasoning_format, 'none');
    assert.equal(body.stream, true);
    assert.equal(text.join(''), '<think>hm</think>Hi');
    assert.equal(stats.finish, 'stop');
    assert.equal(stats.completionTokens, 2);
  } finally {
    srv.close();
  }
});

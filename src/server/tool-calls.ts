// Function calling on models without a tool format of their own (BitNet b1.58 2B4T has none): the
// request's tools are described in a system message, and the reply is constrained to one JSON
// envelope, compact and on one line, that the server turns back into OpenAI's tool_calls:
//
//   {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}   calls (tool_choice
//                                                                                auto, required, named)
//   {"response": "plain answer"}                                                 text (auto only)
//
// Each call's arguments follow its tool's `parameters` schema (the grammar enforces it; a tool
// without parameters takes any object). parallel_tool_calls: false allows one call per reply.
// tool_choice 'none' leaves the tools out (no description, no constraint).
//
// Follow-ups: an assistant message with tool_calls is shown to the model as the envelope it would
// have written; a `tool` message becomes a user turn {"tool_response": {"name", "content"}} where the
// template knows no tools (tool-formats.ts), and keeps its role where it does.
import type { GrammarSpec } from '../generate/grammar.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import { invalidParam, invalidType, missingParam } from './errors.js';
import { toolSignature } from './tool-signature.js';

export interface ToolDef {
  name: string;
  description?: string;
  /** JSON Schema of the arguments (an object schema) */
  parameters: Record<string, unknown>;
}

export type ToolChoice = 'auto' | 'required' | { name: string };

export interface ToolsRequest {
  tools: ToolDef[];
  choice: ToolChoice;
  parallel: boolean;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The reply of a request with tools: text, or tool calls (with the text written beside them, in formats that allow it). */
export type ToolReply = { kind: 'text'; content: string } | { kind: 'calls'; calls: ToolCall[]; content?: string };

type Body = Record<string, unknown>;
const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function parseTool(t: unknown, i: number): ToolDef {
  const p = `tools[${i}]`;
  if (!isObject(t)) throw invalidType(p, 'an object {type: "function", function: {...}}', t);
  if (t.type !== 'function') throw invalidParam(`${p}.type`, `'${p}.type' must be "function", got ${JSON.stringify(t.type)}`);
  const f = t.function;
  if (!isObject(f)) throw f === undefined ? missingParam(`${p}.function`) : invalidType(`${p}.function`, 'an object', f);
  if (f.name === undefined || f.name === null) throw missingParam(`${p}.function.name`);
  if (typeof f.name !== 'string') throw invalidType(`${p}.function.name`, 'a string', f.name);
  if (!NAME.test(f.name)) {
    throw invalidParam(`${p}.function.name`, `tool name ${JSON.stringify(f.name)} must be 1 to 64 letters, digits, '_', '.' or '-'`);
  }
  if (f.description !== undefined && f.description !== null && typeof f.description !== 'string') {
    throw invalidType(`${p}.function.description`, 'a string', f.description);
  }
  let parameters: Record<string, unknown> = { type: 'object' };
  if (f.parameters !== undefined && f.parameters !== null) {
    if (!isObject(f.parameters)) throw invalidType(`${p}.function.parameters`, 'a JSON Schema object', f.parameters);
    parameters = f.parameters;
  }
  const def: ToolDef = { name: f.name, parameters };
  if (typeof f.description === 'string') def.description = f.description;
  return def;
}

/** tools, tool_choice and parallel_tool_calls of a chat request; undefined when there are no tools to use. */
export function parseTools(b: Body): ToolsRequest | undefined {
  const has = (k: string) => b[k] !== undefined && b[k] !== null;
  if (has('functions')) throw invalidParam('functions', "'functions' is deprecated and not supported: use 'tools'");
  let tools: ToolDef[] = [];
  if (has('tools')) {
    if (!Array.isArray(b.tools)) throw invalidType('tools', 'an array of tools', b.tools);
    tools = b.tools.map(parseTool);
    const seen = new Set<string>();
    tools.forEach((t, i) => {
      if (seen.has(t.name)) throw invalidParam(`tools[${i}].function.name`, `two tools are named ${JSON.stringify(t.name)}`);
      seen.add(t.name);
    });
  }
  let choice: ToolChoice | 'none' = tools.length > 0 ? 'auto' : 'none';
  if (has('tool_choice')) {
    const c = b.tool_choice;
    if (c === 'none' || c === 'auto' || c === 'required') choice = c;
    else if (isObject(c)) {
      const f = c.function;
      if (c.type !== 'function' || !isObject(f) || typeof f.name !== 'string') {
        throw invalidParam('tool_choice', "'tool_choice' must be \"none\", \"auto\", \"required\" or {type: \"function\", function: {name}}");
      }
      if (!tools.some((t) => t.name === f.name)) {
        throw invalidParam('tool_choice', `'tool_choice' names the function ${JSON.stringify(f.name)}, which is not in 'tools'`);
      }
      choice = { name: f.name };
    } else {
      throw invalidParam('tool_choice', `'tool_choice' must be "none", "auto", "required" or a named function, got ${JSON.stringify(c)}`);
    }
    if (choice !== 'none' && tools.length === 0) throw invalidParam('tool_choice', "'tool_choice' needs 'tools'");
  }
  let parallel = true;
  if (has('parallel_tool_calls')) {
    if (typeof b.parallel_tool_calls !== 'boolean') throw invalidType('parallel_tool_calls', 'a boolean', b.parallel_tool_calls);
    parallel = b.parallel_tool_calls;
  }
  if (choice === 'none') return undefined;
  return { tools, choice, parallel };
}

/** The tools a reply may call under this choice. */
export function callable(req: ToolsRequest): ToolDef[] {
  const c = req.choice;
  return typeof c === 'object' ? req.tools.filter((t) => t.name === c.name) : req.tools;
}

/**
 * The most calls one reply may hold: one per tool it may call (so one with a named tool_choice),
 * and one in all with parallel_tool_calls false. Without a bound a model that does not stop (the
 * demo) keeps adding calls until max_tokens.
 */
export function maxCalls(req: ToolsRequest): number {
  return req.parallel ? callable(req).length : 1;
}

/** The JSON Schema of the reply envelope. */
export function envelopeSchema(req: ToolsRequest): Record<string, unknown> {
  const call = (t: ToolDef) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters },
    required: ['name', 'arguments'],
  });
  const tools = callable(req);
  const items = tools.length === 1 ? call(tools[0]!) : { anyOf: tools.map(call) };
  const list: Record<string, unknown> = { type: 'array', items, minItems: 1, maxItems: maxCalls(req) };
  const calls = { type: 'object', properties: { tool_calls: list }, required: ['tool_calls'] };
  if (req.choice !== 'auto') return calls;
  const text = { type: 'object', properties: { response: { type: 'string' } }, required: ['response'] };
  return { anyOf: [calls, text] };
}

/** The grammar a reply is generated under. */
export function toolGrammar(req: ToolsRequest): GrammarSpec {
  return { type: 'json_schema', schema: envelopeSchema(req) };
}

/**
 * The system text describing the tools (unless `listTools` is false: the template shows them) and
 * the reply format. Kept short (each tool one signature line, tool-signature.ts): on a small model's
 * context every token counts, and the grammar, not the text, enforces the format.
 */
export function toolSystemPrompt(req: ToolsRequest, listTools = true): string {
  const lines: string[] = [listTools ? 'Tools:' : 'You may call the tools you were given.'];
  if (listTools) for (const t of req.tools) lines.push(toolSignature(t));
  const c = req.choice;
  const name = typeof c === 'object' ? c.name : '...';
  const call = `{"tool_calls": [{"name": "${name}", "arguments": {...}}]}`;
  if (c === 'auto') lines.push(`Reply with JSON only: ${call} to call tools, or {"response": "..."}.`);
  else lines.push(`Reply with JSON only, calling ${typeof c === 'object' ? c.name : 'tools'}: ${call}`);
  lines.push(listTools ? 'Tool results come back as {"tool_response": ...}.' : 'Tool results come back as "tool" messages.');
  return lines.join('\n');
}

/** Messages with the tool description added to the system message (or as a new first one). */
export function withToolPrompt(messages: ChatMessage[], req: ToolsRequest, listTools = true): ChatMessage[] {
  const text = toolSystemPrompt(req, listTools);
  if (messages[0]?.role === 'system') {
    return [{ ...messages[0], content: `${messages[0].content}\n\n${text}` }, ...messages.slice(1)];
  }
  return [{ role: 'system', content: text }, ...messages];
}

/** An assistant message's tool_calls, as the envelope the model would have written. */
export function envelopeOf(calls: readonly { name: string; arguments: unknown }[]): string {
  return JSON.stringify({ tool_calls: calls.map((c) => ({ name: c.name, arguments: c.arguments })) });
}

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A tool call id in OpenAI's style (call_ + 24 random letters and digits). */
export function toolCallId(): string {
  let s = 'call_';
  for (let i = 0; i < 24; i++) s += ID_CHARS[Math.floor(Math.random() * ID_CHARS.length)];
  return s;
}

/**
 * The reply in a generated envelope. An envelope cut short (by max_tokens or the context end) is
 * read as the stream reader reads it, so the whole reply carries what a streamed one showed: the
 * calls begun, the last one's arguments as far as they were written; or the text written so far.
 */
export function parseToolReply(text: string): ToolReply {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return cutReply(text);
  }
  if (isObject(v) && typeof v.response === 'string') return { kind: 'text', content: v.response };
  if (isObject(v) && Array.isArray(v.tool_calls)) {
    const calls: ToolCall[] = [];
    for (const c of v.tool_calls) {
      if (!isObject(c) || typeof c.name !== 'string') return { kind: 'text', content: text };
      calls.push({ id: toolCallId(), type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments ?? {}) } });
    }
    if (calls.length > 0) return { kind: 'calls', calls };
  }
  return { kind: 'text', content: text };
}

/** A cut envelope, as ToolReplyStream reads it (text as it is when its kind never showed). */
function cutReply(text: string): ToolReply {
  const r = new ToolReplyStream();
  const events = [...r.push(text), ...r.finish()];
  return events.length > 0 ? replyOf(events) : { kind: 'text', content: text };
}

/** The reply that a reader's events make (calls with their arguments as written). */
export function replyOf(events: readonly ToolStreamEvent[]): ToolReply {
  const calls: ToolCall[] = [];
  let content = '';
  for (const e of events) {
    if (e.kind === 'content') content += e.text;
    else if (e.kind === 'call') calls.push({ id: e.id, type: 'function', function: { name: e.name, arguments: '' } });
    else calls[e.index]!.function.arguments += e.text;
  }
  if (calls.length === 0) return { kind: 'text', content };
  const reply: ToolReply = { kind: 'calls', calls };
  if (content.trim()) reply.content = content.trim();
  return reply;
}

/** What a streamed envelope has revealed: reply text, the start of a call, or more of its arguments. */
export type ToolStreamEvent =
  | { kind: 'content'; text: string }
  | { kind: 'call'; index: number; id: string; name: string }
  | { kind: 'arguments'; index: number; text: string };

const CALLS_OPEN = '{"tool_calls": [';
const TEXT_OPEN = '{"response": "';
const NAME_OPEN = '{"name": "';
const ARGS_OPEN = '", "arguments": ';
const JSON_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Finds where a JSON object or array that arrives in pieces ends (brackets inside strings, and
 *  escaped quotes, do not count). */
export class JsonEnd {
  private depth = 0;
  private inString = false;
  private escaped = false;

  reset(): void {
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
  }

  /** Reads `text` on from where the last call stopped: how many of its characters belong to the
   *  value, and whether the value closed among them. */
  scan(text: string): { used: number; closed: boolean } {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') this.inString = false;
      } else if (ch === '"') this.inString = true;
      else if (ch === '{' || ch === '[') this.depth++;
      else if ((ch === '}' || ch === ']') && --this.depth === 0) return { used: i + 1, closed: true };
    }
    return { used: text.length, closed: false };
  }
}

/** A reader of a reply that streams in: the text so far, a position in it, and a state machine
 *  whose step() moves on while it can (each step consumes text, changes state, or both). */
export abstract class SteppedReader<S extends string> {
  protected buf = '';
  protected pos = 0;
  protected calls = 0;
  protected abstract state: S;

  /** Calls started so far. */
  get callCount(): number {
    return this.calls;
  }

  protected abstract step(out: ToolStreamEvent[]): void;

  /** Appends text and steps until nothing moves: the events it made. */
  protected consume(text: string): ToolStreamEvent[] {
    this.buf += text;
    const out: ToolStreamEvent[] = [];
    for (;;) {
      const before = this.pos;
      const state = this.state;
      this.step(out);
      if (this.pos === before && this.state === state) break;
    }
    return out;
  }
}

/**
 * Reads a generated envelope as it streams, so that the reply's text and each call's arguments are
 * passed on as they are written, the way OpenAI streams them. It relies on the envelope's exact
 * compact form (the grammar's: fixed key order, ", " and ": " separators); anything else (a
 * generation cut short before the envelope showed its kind) comes out as text at finish().
 */
export class ToolReplyStream extends SteppedReader<'start' | 'call' | 'args' | 'afterArgs' | 'response' | 'done'> {
  protected state: 'start' | 'call' | 'args' | 'afterArgs' | 'response' | 'done' = 'start';
  /** where the call's arguments (a JSON object) end */
  private readonly args = new JsonEnd();
  private emitted = false;

  push(text: string): ToolStreamEvent[] {
    const out = this.consume(text);
    if (out.length > 0) this.emitted = true;
    return out;
  }

  /** The end of the generation: what was not shown yet (all of it as text if the kind never showed). */
  finish(): ToolStreamEvent[] {
    if (!this.emitted && this.buf.length > 0 && this.state === 'start') return [{ kind: 'content', text: this.buf }];
    return [];
  }

  protected step(out: ToolStreamEvent[]): void {
    const rest = this.buf.slice(this.pos);
    switch (this.state) {
      case 'start':
        if (rest.startsWith(CALLS_OPEN)) {
          this.pos += CALLS_OPEN.length;
          this.state = 'call';
        } else if (rest.startsWith(TEXT_OPEN)) {
          this.pos += TEXT_OPEN.length;
          this.state = 'response';
        }
        return;
      case 'call': {
        if (!rest.startsWith(NAME_OPEN)) return;
        const end = rest.indexOf(ARGS_OPEN, NAME_OPEN.length);
        if (end < 0) return;
        out.push({ kind: 'call', index: this.calls, id: toolCallId(), name: rest.slice(NAME_OPEN.length, end) });
        this.calls++;
        this.pos += end + ARGS_OPEN.length;
        this.state = 'args';
        this.args.reset();
        return;
      }
      case 'args': {
        const { used, closed } = this.args.scan(rest);
        if (closed) this.state = 'afterArgs';
        if (used > 0) out.push({ kind: 'arguments', index: this.calls - 1, text: rest.slice(0, used) });
        this.pos += used;
        return;
      }
      case 'afterArgs':
        if (rest.startsWith('}, ')) {
          this.pos += 3;
          this.state = 'call';
        } else if (rest.startsWith('}]}')) {
          this.pos += 3;
          this.state = 'done';
        }
        return;
      case 'response': {
        let text = '';
        let i = 0;
        while (i < rest.length) {
          const ch = rest[i]!;
          if (ch === '"') {
            this.state = 'done';
            i++;
            break;
          }
          if (ch !== '\\') {
            text += ch;
            i++;
            continue;
          }
          const e = rest[i + 1];
          if (e === undefined) break;
          if (e === 'u') {
            const hex = rest.slice(i + 2, i + 6);
            if (hex.length < 4) break;
            text += String.fromCharCode(parseInt(hex, 16));
            i += 6;
          } else {
            text += JSON_ESCAPES[e] ?? e;
            i += 2;
          }
        }
        if (text) out.push({ kind: 'content', text });
        this.pos += i;
        return;
      }
      case 'done':
        return;
    }
  }
}

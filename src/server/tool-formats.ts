// Which way a model is shown its tools and writes its calls, chosen once from its chat template.
//
// A template that reads a `tools` variable (found by walking the parsed template, not by searching
// its text) is given the request's tools in OpenAI's shape ([{type: 'function', function: {name,
// description, parameters}}]), and earlier turns as Hugging Face templates expect them: assistant
// tool_calls with their arguments as an object (templates write `arguments | tojson`), `tool`
// messages with their tool_call_id. The reply is then constrained to, and read in, the format that
// family was trained on, recognised by markers in the template (the markers llama.cpp's
// common/chat.cpp keys on):
//
//   llama3-json  Llama 3.1 / 3.2 / 3.3 (the template has an `ipython` turn header): one call per
//                reply, a JSON object {"name": ..., "parameters": {...}} making up the whole reply
//                (a leading <|python_tag|> is skipped when reading). Otherwise the reply is text
//                that does not start with '{'.
//   hermes       Hermes 2/3 Pro, Qwen 2.5 (the template writes <tool_call>): text, and calls as
//                <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one after another.
//
// Anything else that takes tools ('template-generic') still gets them through its template, but
// its reply format is not known here, so the reply is constrained to and read as the generic
// envelope of tool-calls.ts, whose format the system prompt describes. Templates that do not read
// `tools` (2B4T's) get the generic path: tools described in the system prompt, the envelope reply.
import { Template } from '@huggingface/jinja';
import type { GrammarSpec, TagElement, TagFormat } from '../generate/grammar.js';
import type { ChatMessage } from '../tokenizer/chat-template.js';
import {
  callable,
  envelopeOf,
  JsonEnd,
  SteppedReader,
  parseToolReply,
  replyOf,
  toolCallId,
  toolGrammar,
  ToolReplyStream,
  type ToolCall,
  type ToolReply,
  type ToolsRequest,
  type ToolStreamEvent,
} from './tool-calls.js';

export type ToolFormatName = 'generic' | 'template-generic' | 'llama3-json' | 'hermes';

/** Reads a reply as it streams (the same events for any split of the text). */
export interface ToolReader {
  push(text: string): ToolStreamEvent[];
  /** the end of the generation: what was held back */
  finish(): ToolStreamEvent[];
  /** calls started so far */
  readonly callCount: number;
}

export interface ToolFormat {
  name: ToolFormatName;
  /** tools go to the template as `tools` (else they are described in the system prompt) */
  inTemplate: boolean;
  /** the reply is the generic envelope, whose format the system prompt describes */
  envelope: boolean;
  grammar(req: ToolsRequest): GrammarSpec;
  reader(): ToolReader;
  parse(text: string): ToolReply;
  /** earlier turns, shaped as this format's template expects */
  history(messages: ChatMessage[]): ChatMessage[];
}

// ---- detection

type Node = { type?: unknown; [k: string]: unknown };

/** True when the template reads the variable `name` (a member `x.name` does not count). */
export function templateReads(source: string, name: string): boolean {
  let root: unknown;
  try {
    root = new Template(source).parsed;
  } catch {
    return false;
  }
  const seen = new Set<unknown>();
  const visit = (v: unknown): boolean => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return false;
    seen.add(v);
    if (Array.isArray(v)) return v.some(visit);
    const n = v as Node;
    if (n.type === 'Identifier' && n.value === name) return true;
    // in `message.tools` the property is an Identifier too, but not the variable
    if (n.type === 'MemberExpression' && n.computed === false) return visit(n.object);
    return Object.values(n).some(visit);
  };
  return visit(root);
}

/** The tool format of a chat template (the Jinja source in use). */
export function detectToolFormat(source: string): ToolFormat {
  if (!templateReads(source, 'tools')) return GENERIC;
  // Qwen3-Coder-style XML calls also use <tool_call>, with <function=...> inside: not Hermes
  if (source.includes('<tool_call>') && !source.includes('<function=')) return HERMES;
  if (source.includes('<|start_header_id|>ipython<|end_header_id|>') && !source.includes('<function=')) return LLAMA3;
  return TEMPLATE_GENERIC;
}

/** The request's tools as templates take them (OpenAI's shape). */
export function templateTools(req: ToolsRequest): unknown[] {
  return req.tools.map((t) => ({
    type: 'function',
    function: { name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters },
  }));
}

// ---- history

type MessageCall = { id: string; type: 'function'; function: { name: string; arguments: string } };
const callsOf = (m: ChatMessage): MessageCall[] | undefined => (Array.isArray(m.tool_calls) ? (m.tool_calls as MessageCall[]) : undefined);

/** Generic: an assistant's calls are shown as the envelope it writes (tool-calls.ts). */
function envelopeHistory(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => {
    const calls = callsOf(m);
    if (m.role !== 'assistant' || !calls) return m;
    const envelope = envelopeOf(calls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) })));
    return { ...m, content: m.content ? `${m.content}\n${envelope}` : envelope };
  });
}

/**
 * Generic, for templates that know nothing of tools (2B4T's renders only system, user and
 * assistant turns, so a `tool` message would vanish): each tool result becomes a user turn
 * {"tool_response": {"name", "content"}}.
 */
function envelopeHistoryWithResults(messages: ChatMessage[]): ChatMessage[] {
  const names = new Map<string, string>();
  return envelopeHistory(messages).map((m, i) => {
    for (const c of callsOf(messages[i]!) ?? []) names.set(c.id, c.function.name);
    if (m.role !== 'tool') return m;
    const id = typeof m.tool_call_id === 'string' ? m.tool_call_id : '';
    const response = { name: names.get(id) ?? (typeof m.name === 'string' ? m.name : id), content: m.content };
    return { role: 'user', content: JSON.stringify({ tool_response: response }) };
  });
}

/** Template formats: the calls stay tool_calls, their arguments objects (the template writes them). */
function objectHistory(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => {
    const calls = callsOf(m);
    if (m.role !== 'assistant' || !calls) return m;
    return { ...m, tool_calls: calls.map((c) => ({ ...c, function: { name: c.function.name, arguments: JSON.parse(c.function.arguments) } })) };
  });
}

// ---- the formats

const GENERIC: ToolFormat = {
  name: 'generic',
  inTemplate: false,
  envelope: true,
  grammar: toolGrammar,
  reader: () => new ToolReplyStream(),
  parse: parseToolReply,
  history: envelopeHistoryWithResults,
};

const TEMPLATE_GENERIC: ToolFormat = { ...GENERIC, name: 'template-generic', inTemplate: true, history: envelopeHistory };

const oneOf = (elements: TagFormat[]): TagFormat => (elements.length === 1 ? elements[0]! : { type: 'or', elements });

/** How a format writes one call: the text before the name, between name and arguments, after them. */
interface CallSyntax {
  open: string;
  middle: string;
  close: string;
  /** calls only as the whole reply (Llama 3); else anywhere in the text (Hermes) */
  wholeReply: boolean;
  /**
   * a control token's text the model may write before a call, skipped when reading (the grammar
   * never asks for it: XGrammar sees control tokens as empty, and replies normally omit their text)
   */
  skip?: string;
}

const LLAMA3_SYNTAX: CallSyntax = { open: '{"name": "', middle: '", "parameters": ', close: '}', wholeReply: true, skip: '<|python_tag|>' };
const HERMES_SYNTAX: CallSyntax = { open: '<tool_call>\n{"name": "', middle: '", "arguments": ', close: '}\n</tool_call>', wholeReply: false };

/** A reply that is not a Llama 3 call: text not starting with '{' (or nothing). */
const NOT_A_CALL = 'root ::= "" | [^{] [^\\0]*';

function llama3Grammar(req: ToolsRequest): GrammarSpec {
  const s = LLAMA3_SYNTAX;
  const calls = callable(req).map(
    (t): TagFormat => ({
      type: 'sequence',
      elements: [{ type: 'const_string', value: s.open + t.name + s.middle }, { type: 'json_schema', json_schema: t.parameters }, { type: 'const_string', value: s.close }],
    }),
  );
  const format = req.choice === 'auto' ? oneOf([...calls, { type: 'grammar', grammar: NOT_A_CALL }]) : oneOf(calls);
  return { type: 'structural_tag', format };
}

function hermesGrammar(req: ToolsRequest): GrammarSpec {
  const s = HERMES_SYNTAX;
  const tags = callable(req).map(
    (t): TagElement => ({ type: 'tag', begin: s.open + t.name + s.middle, content: { type: 'json_schema', json_schema: t.parameters }, end: s.close }),
  );
  // one call with parallel_tool_calls false or a named tool_choice; else the model ends the list
  // (tags cannot count, so the generic envelope's bound of one call per tool is not applied here)
  const one = !req.parallel || typeof req.choice === 'object';
  const format: TagFormat =
    req.choice === 'auto'
      ? { type: 'triggered_tags', triggers: ['<tool_call>'], tags, stop_after_first: one }
      : { type: 'tags_with_separator', tags, separator: '\n', at_least_one: true, stop_after_first: one };
  return { type: 'structural_tag', format };
}

/** The longest end of `text` that begins `word` (text that may yet turn out to be `word`). */
function heldBack(text: string, word: string): number {
  for (let n = Math.min(text.length, word.length - 1); n > 0; n--) if (word.startsWith(text.slice(-n))) return n;
  return 0;
}

/**
 * Reads calls written in a CallSyntax as they stream: text as content (whitespace around calls
 * dropped), each call's name once it is complete, then its arguments as they are written.
 */
export class CallSyntaxReader extends SteppedReader<'start' | 'text' | 'name' | 'args' | 'close'> implements ToolReader {
  protected state: 'start' | 'text' | 'name' | 'args' | 'close' = 'start';
  /** where the call's arguments (a JSON object) end */
  private readonly args = new JsonEnd();
  /** whitespace held back: shown only if more text follows */
  private pending = '';
  /** set when the reply is text for good (Llama 3: it did not start with a call) */
  private plain = false;
  /** just after a call: leading whitespace is not content */
  private afterCall = false;
  /** a call did not finish (the generation was cut) */
  incomplete = false;

  constructor(private readonly s: CallSyntax) {
    super();
    if (!s.wholeReply) this.state = 'text';
  }

  push(text: string): ToolStreamEvent[] {
    return this.consume(text);
  }

  finish(): ToolStreamEvent[] {
    const out: ToolStreamEvent[] = [];
    const rest = this.buf.slice(this.pos);
    this.pos = this.buf.length;
    if (this.state === 'name' || this.state === 'args' || this.state === 'close') this.incomplete = true;
    if (this.state === 'start' || this.state === 'text' || this.state === 'name') {
      // text not shown yet; a call cut short before its name was complete shows as written
      this.content(out, (this.state === 'name' ? this.s.open : '') + rest);
      if (this.calls === 0 && this.pending) out.push({ kind: 'content', text: this.pending });
      this.pending = '';
    }
    return out;
  }

  /** Shows text as content: a text reply as it is; around calls, without the whitespace next to them. */
  private content(out: ToolStreamEvent[], text: string): void {
    if (this.plain) {
      if (text) out.push({ kind: 'content', text });
      return;
    }
    let all = this.pending + text;
    if (this.afterCall) all = all.trimStart();
    const shown = all.trimEnd();
    this.pending = all.slice(shown.length);
    if (shown) {
      out.push({ kind: 'content', text: shown });
      this.afterCall = false;
    }
  }

  protected step(out: ToolStreamEvent[]): void {
    const s = this.s;
    const rest = this.buf.slice(this.pos);
    switch (this.state) {
      case 'start': {
        // Llama 3: a call is the whole reply, so the first characters decide (as in the grammar:
        // a reply starting with anything but '{' is text, so no whitespace is skipped here)
        let r = rest;
        if (s.skip && r.startsWith(s.skip)) r = r.slice(s.skip.length);
        else if (s.skip && s.skip.startsWith(r)) return;
        if (r.startsWith(s.open)) {
          this.pos = this.buf.length - r.length + s.open.length;
          this.state = 'name';
        } else if (!s.open.startsWith(r)) {
          this.plain = true;
          this.state = 'text';
        }
        return;
      }
      case 'text': {
        if (this.plain) {
          this.content(out, rest);
          this.pos += rest.length;
          return;
        }
        const at = rest.indexOf(s.open);
        if (at >= 0) {
          this.content(out, rest.slice(0, at));
          this.pending = ''; // whitespace before a call is not content
          this.pos += at + s.open.length;
          this.state = 'name';
          return;
        }
        const shown = rest.length - heldBack(rest, s.open);
        this.content(out, rest.slice(0, shown));
        this.pos += shown;
        return;
      }
      case 'name': {
        const end = rest.indexOf(s.middle);
        if (end < 0) return;
        out.push({ kind: 'call', index: this.calls, id: toolCallId(), name: rest.slice(0, end) });
        this.calls++;
        this.pos += end + s.middle.length;
        this.state = 'args';
        this.args.reset();
        return;
      }
      case 'args': {
        const { used, closed } = this.args.scan(rest);
        if (closed) this.state = 'close';
        if (used > 0) out.push({ kind: 'arguments', index: this.calls - 1, text: rest.slice(0, used) });
        this.pos += used;
        return;
      }
      case 'close':
        if (rest.startsWith(s.close)) {
          this.pos += s.close.length;
          this.state = 'text';
          this.pending = '';
          this.afterCall = true;
        } else if (!s.close.startsWith(rest)) {
          // not this format after all (only without the grammar): the rest is text
          this.state = 'text';
          this.plain = true;
        }
        return;
    }
  }
}

/** The whole reply, read by the same reader as the stream. */
function parseWith(syntax: CallSyntax, text: string): ToolReply {
  const r = new CallSyntaxReader(syntax);
  const reply = replyOf([...r.push(text), ...r.finish()]);
  if (reply.kind !== 'calls') return { kind: 'text', content: text };
  // a call cut short (max_tokens) keeps its arguments as far as they were written, as streamed
  if (r.incomplete) return reply;
  for (const c of reply.calls) {
    try {
      c.function.arguments = JSON.stringify(JSON.parse(c.function.arguments));
    } catch {
      return { kind: 'text', content: text };
    }
  }
  return reply;
}

const LLAMA3: ToolFormat = {
  name: 'llama3-json',
  inTemplate: true,
  envelope: false,
  grammar: llama3Grammar,
  reader: () => new CallSyntaxReader(LLAMA3_SYNTAX),
  parse: (text) => parseWith(LLAMA3_SYNTAX, text),
  history: objectHistory,
};

const HERMES: ToolFormat = {
  name: 'hermes',
  inTemplate: true,
  envelope: false,
  grammar: hermesGrammar,
  reader: () => new CallSyntaxReader(HERMES_SYNTAX),
  parse: (text) => parseWith(HERMES_SYNTAX, text),
  history: objectHistory,
};

export const TOOL_FORMATS = { generic: GENERIC, 'template-generic': TEMPLATE_GENERIC, 'llama3-json': LLAMA3, hermes: HERMES } as const;

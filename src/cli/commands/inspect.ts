// wf inspect FILE.gguf [--json] [--no-tensors]
// Shows what a GGUF file holds: format, architecture, hyperparameters ({arch}.* keys), a tokenizer
// summary, the other metadata (long values summarized), the tensor table and totals. Only the
// header is read (through FileSource), so multi-GB files open at once. --json prints one object
// (64-bit integers that do not fit a double, and non-finite floats, as strings).
import { stat } from 'node:fs/promises';
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { readGGUF, type GGUFFile } from '../../gguf/reader.js';
import { type GGUFMetaValue, plainValue } from '../../gguf/meta.js';
import { BITNET_ARCHS, GGUFValueType, typeName } from '../../gguf/types.js';
import { FileSource } from '../../node/file-source.js';
import { DEFAULT_I2S_LAYOUT, I2S_LAYOUT_HINT } from '../../formats/index.js';
import { chooseChatTemplate } from '../../tokenizer/chat-template.js';
import { choosePreTokenizer } from '../../tokenizer/pre-tokenizer-choice.js';
import { preTokenizerFor } from '../../tokenizer/pre-tokenize.js';

const SPECS: OptionSpec[] = [
  { name: 'json', type: 'boolean', description: 'print one JSON object instead of text' },
  { name: 'no-tensors', type: 'boolean', description: 'leave out the tensor table (totals are still shown)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];
const USAGE = 'usage: wf inspect FILE.gguf [--json] [--no-tensors]';

/** arrays longer than this, and strings longer than LONG_STRING characters, are summarized */
const LONG_ARRAY = 16;
const LONG_STRING = 200;
const SUMMARY_HEAD = 5;
/** metadata keys longer than this are cut in the text table (so one long key does not widen every row) */
const KEY_WIDTH = 80;

/** llama.cpp's general.file_type values (llama_ftype); 40 is the bitnet.cpp fork's I2_S. */
const FILE_TYPES: Record<number, string> = {
  0: 'all F32', 1: 'mostly F16', 2: 'mostly Q4_0', 3: 'mostly Q4_1', 7: 'mostly Q8_0', 8: 'mostly Q5_0', 9: 'mostly Q5_1',
  10: 'mostly Q2_K', 11: 'mostly Q3_K_S', 12: 'mostly Q3_K_M', 13: 'mostly Q3_K_L', 14: 'mostly Q4_K_S', 15: 'mostly Q4_K_M',
  16: 'mostly Q5_K_S', 17: 'mostly Q5_K_M', 18: 'mostly Q6_K', 32: 'mostly BF16', 36: 'mostly TQ1_0', 37: 'mostly TQ2_0',
};
const BITNET_FILE_TYPES: Record<number, string> = { 40: 'mostly I2_S, bitnet.cpp' };

/** tokenizer.ggml.token_type values (llama.cpp's llama_token_type) */
const TOKEN_TYPES: Record<number, string> = { 0: 'undefined', 1: 'normal', 2: 'unknown', 3: 'control', 4: 'user_defined', 5: 'unused', 6: 'byte' };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface TensorRow { name: string; type: string; typeId: number; shape: number[]; elements: number; bytes: number; offset: number }
interface TypeTotal { tensors: number; params: number; bytes: number }

export interface InspectReport {
  file: string;
  size: number;
  version: number;
  alignment: number;
  dataOffset: number;
  architecture: string | null;
  name: string | null;
  fileType: { id: number; name: string | null } | null;
  hyperparameters: Record<string, Json>;
  tokenizer: Record<string, Json> | null;
  metadata: Record<string, Json>;
  tensors?: TensorRow[];
  totals: { tensors: number; params: number; bytes: number; byType: Record<string, TypeTotal> };
  /** present when the file has I2_S tensors: the layout they are read in (the bytes cannot tell) */
  i2sLayout?: { default: string; note: string };
}

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.options.help) {
    console.log(helpText(USAGE, SPECS));
    return 0;
  }
  if (args.positionals.length !== 1) {
    throw new CliError(args.positionals.length === 0 ? `missing FILE.gguf\n${USAGE}` : `expected one file, got ${args.positionals.length}\n${USAGE}`);
  }
  const path = args.positionals[0];
  const report = await inspectFile(path, { tensors: !args.options['no-tensors'] });
  console.log(args.options.json ? JSON.stringify(report, jsonReplacer) : renderText(report));
  return 0;
}

/** Reads the header of a GGUF file on disk and describes it. Errors name the file. */
export async function inspectFile(path: string, opts: { tensors?: boolean } = {}): Promise<InspectReport> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new Error(`file not found: ${path}`);
  }
  if (!st.isFile()) throw new Error(`not a file: ${path}`);
  const src = await FileSource.open(path);
  try {
    const file = await readGGUF(src);
    return describe(file, path, opts.tensors ?? true);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  } finally {
    await src.close();
  }
}

/** The report for an opened file (pure: no I/O). */
export function describe(f: GGUFFile, path: string, withTensors = true): InspectReport {
  const arch = f.architecture;
  const used = new Set(['general.architecture', 'general.name', 'general.file_type']);

  const hyperparameters: Record<string, Json> = {};
  if (arch !== undefined) {
    for (const [k, v] of f.metadata) {
      if (!k.startsWith(arch + '.')) continue;
      hyperparameters[k] = jsonValue(v);
      used.add(k);
    }
  }

  const tokenizer = describeTokenizer(f, used, arch);

  const metadata: Record<string, Json> = {};
  for (const [k, v] of f.metadata) if (!used.has(k)) metadata[k] = jsonValue(v);

  const ftId = f.get<number>('general.file_type');
  const fileType = typeof ftId === 'number'
    ? { id: ftId, name: (arch !== undefined && BITNET_ARCHS.has(arch) ? BITNET_FILE_TYPES[ftId] : undefined) ?? FILE_TYPES[ftId] ?? null }
    : null;

  const byType: Record<string, TypeTotal> = {};
  let params = 0, bytes = 0;
  const rows: TensorRow[] = f.tensors.map((t) => {
    const type = typeName(t.type, arch);
    const tt = (byType[type] ??= { tensors: 0, params: 0, bytes: 0 });
    tt.tensors++;
    tt.params += t.nElements;
    tt.bytes += t.byteSize;
    params += t.nElements;
    bytes += t.byteSize;
    return { name: t.name, type, typeId: t.type, shape: t.dims, elements: t.nElements, bytes: t.byteSize, offset: t.offset };
  });

  const name = f.get('general.name');
  return {
    file: path,
    size: f.size,
    version: f.version,
    alignment: f.alignment,
    dataOffset: f.dataOffset,
    architecture: arch === undefined ? null : clip(arch),
    name: typeof name === 'string' ? clip(name) : null,
    fileType,
    hyperparameters,
    tokenizer,
    metadata,
    ...(withTensors ? { tensors: rows } : {}),
    totals: { tensors: rows.length, params, bytes, byType },
    ...('I2_S' in byType ? { i2sLayout: { default: DEFAULT_I2S_LAYOUT, note: I2S_LAYOUT_HINT } } : {}),
  };
}

function describeTokenizer(f: GGUFFile, used: Set<string>, arch: string | undefined): Record<string, Json> | null {
  const keys = [...f.metadata.keys()].filter((k) => k.startsWith('tokenizer.'));
  if (keys.length === 0) return null;
  const take = <T>(k: string): T | undefined => {
    if (!f.metadata.has(k)) return undefined;
    used.add(k);
    return f.get<T>(k);
  };
  const str = (v: unknown) => (typeof v === 'string' ? clip(v) : null);
  const tokens = take<unknown>('tokenizer.ggml.tokens');
  const tokenList = Array.isArray(tokens) ? tokens : undefined;
  const out: Record<string, Json> = {
    model: str(take('tokenizer.ggml.model')),
    pre: str(take('tokenizer.ggml.pre')),
    vocabSize: tokenList ? tokenList.length : null,
  };
  // the pre-tokenizer the engine will use, and why (a missing pre is decided by pre-tokenizer-choice.ts)
  if (out.model === 'gpt2') {
    const choice = choosePreTokenizer(typeof out.pre === 'string' ? out.pre : undefined, arch, (tokenList ?? []) as string[]);
    let name: string;
    try {
      name = preTokenizerFor(choice.pre).name;
    } catch {
      name = `unsupported ('${choice.pre}')`;
    }
    out.preTokenizer = { name, reason: choice.reason };
  }
  const types = take<unknown>('tokenizer.ggml.token_type');
  if (Array.isArray(types)) {
    const counts: Record<string, number> = {};
    for (const t of types) {
      const n = TOKEN_TYPES[t as number] ?? `type ${String(t)}`;
      counts[n] = (counts[n] ?? 0) + 1;
    }
    out.tokenTypes = counts;
  }
  const merges = take<unknown>('tokenizer.ggml.merges');
  out.merges = Array.isArray(merges) ? merges.length : null;
  // special tokens: every tokenizer.ggml.<name>_token_id, with the token's text
  const special: Record<string, Json> = {};
  for (const k of keys) {
    const m = /^tokenizer\.ggml\.(\w+)_token_id$/.exec(k);
    if (!m) continue;
    const id = take<unknown>(k);
    const idNum = typeof id === 'number' ? id : null;
    const text = idNum !== null && tokenList && idNum >= 0 && idNum < tokenList.length ? tokenList[idNum] : undefined;
    special[m[1]] = { id: idNum ?? jsonValue(f.metadata.get(k)!), token: typeof text === 'string' ? clip(text) : null };
  }
  out.special = special;
  for (const [k, name] of [['tokenizer.ggml.add_bos_token', 'addBos'], ['tokenizer.ggml.add_eos_token', 'addEos']] as const) {
    const v = take<unknown>(k);
    out[name] = typeof v === 'boolean' ? v : null;
  }
  const tpl = take<unknown>('tokenizer.chat_template');
  const use = chooseChatTemplate(typeof tpl === 'string' ? tpl : undefined);
  out.chatTemplate = {
    present: typeof tpl === 'string',
    length: typeof tpl === 'string' ? tpl.length : 0,
    use: use.origin,
    reason: use.reason,
    ...(use.warning ? { warning: use.warning } : {}),
  };
  return out;
}

/** A string from the file as shown: at most LONG_STRING characters, with how many more there were. */
function clip(s: string, max = LONG_STRING): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length - max} more characters)`;
}

/** A metadata value as JSON: f32 shortest form, 64-bit ints as numbers when exact, long values summarized. */
function jsonValue(v: GGUFMetaValue): Json {
  if (v.type === GGUFValueType.ARRAY) {
    const items = plainValue(v) as unknown[];
    const itemType = valueTypeName(v.itemType ?? -1);
    const conv = (x: unknown, i: number): Json =>
      v.itemType === GGUFValueType.ARRAY ? jsonValue((v.value as GGUFMetaValue[])[i]) : scalarJson(x, v.itemType!);
    if (items.length > LONG_ARRAY) {
      return { summary: `array of ${items.length} ${itemType}`, itemType, length: items.length, head: items.slice(0, SUMMARY_HEAD).map(conv) };
    }
    return items.map(conv);
  }
  return scalarJson(plainValue(v), v.type);
}

function scalarJson(x: unknown, type: number): Json {
  if (typeof x === 'bigint') return x.toString();
  if (typeof x === 'number') {
    if (!Number.isFinite(x)) return String(x);
    return type === GGUFValueType.FLOAT32 ? shortestF32(x) : x;
  }
  if (typeof x === 'string' && x.length > LONG_STRING) {
    return { summary: `string of ${x.length} characters`, length: x.length, head: x.slice(0, 60) };
  }
  return x as Json;
}

/** The shortest decimal that reads back as the same float32 (1e-5 rather than 0.000009999999747378752). */
function shortestF32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

function valueTypeName(t: number): string {
  const e = Object.entries(GGUFValueType).find(([, id]) => id === t);
  return e ? e[0].toLowerCase() : `type ${t}`;
}

function jsonReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

// ---- text rendering

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

function fmtCount(n: number): string {
  return n.toLocaleString('en-US');
}

function fmtJson(v: Json): string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof v.summary === 'string') {
    return `${v.summary}: ${JSON.stringify(v.head)}${(v.length as number) > SUMMARY_HEAD ? ' ...' : ''}`;
  }
  return JSON.stringify(v);
}

export function renderText(r: InspectReport): string {
  const L: string[] = [];
  const kv = (k: string, v: string, indent = '') => L.push(`${indent}${k.padEnd(16)} ${v}`);
  kv('file', `${r.file} (${fmtCount(r.size)} bytes, ${fmtBytes(r.size)})`);
  kv('format', `GGUF v${r.version}, alignment ${r.alignment}, tensor data at offset ${fmtCount(r.dataOffset)}`);
  kv('architecture', r.architecture ?? '(none)');
  kv('name', r.name ?? '(none)');
  kv('file type', r.fileType ? `${r.fileType.id}${r.fileType.name ? ` (${r.fileType.name})` : ' (unknown)'}` : '(not given)');

  const hp = Object.entries(r.hyperparameters);
  if (hp.length) {
    L.push('', `hyperparameters (${r.architecture}.*)`);
    const w = Math.max(...hp.map(([k]) => k.length - r.architecture!.length - 1));
    for (const [k, v] of hp) L.push(`  ${k.slice(r.architecture!.length + 1).padEnd(w)}  ${fmtJson(v)}`);
  }

  const t = r.tokenizer;
  if (t) {
    L.push('', 'tokenizer');
    kv('model', `${t.model ?? '(none)'}${t.pre ? ` (tokenizer.ggml.pre ${t.pre})` : ''}`, '  ');
    const pt = t.preTokenizer as { name: string; reason: string } | undefined;
    if (pt) kv('pre-tokenizer', `${pt.name} (${pt.reason})`, '  ');
    const types = t.tokenTypes ? ` (${Object.entries(t.tokenTypes as Record<string, number>).map(([k, n]) => `${fmtCount(n)} ${k}`).join(', ')})` : '';
    kv('vocabulary', t.vocabSize === null ? '(no token list)' : `${fmtCount(t.vocabSize as number)} tokens${types}`, '  ');
    kv('merges', t.merges === null ? '(none)' : fmtCount(t.merges as number), '  ');
    for (const [name, s] of Object.entries(t.special as Record<string, { id: Json; token: string | null }>)) {
      kv(name, `${fmtJson(s.id)}${s.token !== null ? ` ${JSON.stringify(s.token)}` : ' (not in the vocabulary)'}`, '  ');
    }
    kv('add_bos', t.addBos === null ? '(not given)' : String(t.addBos), '  ');
    if (t.addEos !== null) kv('add_eos', String(t.addEos), '  ');
    const ct = t.chatTemplate as { present: boolean; length: number; use: string; reason: string };
    kv('chat template', ct.present ? `present (${fmtCount(ct.length)} characters)` : 'none', '  ');
    kv('template used', `${ct.use} (${ct.reason})`, '  ');
  }

  const md = Object.entries(r.metadata);
  if (md.length) {
    L.push('', 'other metadata');
    const w = Math.min(KEY_WIDTH, Math.max(...md.map(([k]) => k.length)));
    for (const [k, v] of md) L.push(`  ${clip(k, KEY_WIDTH).padEnd(w)}  ${fmtJson(v)}`);
  }

  if (r.tensors) {
    L.push('', `tensors (${r.tensors.length})`);
    if (r.tensors.length) {
      const rows = r.tensors.map((x) => [x.name, x.type, `[${x.shape.join(', ')}]`, fmtCount(x.bytes), fmtCount(x.offset)]);
      const head = ['name', 'type', 'shape (ggml order)', 'bytes', 'offset'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
      const line = (cells: string[]) => '  ' + cells.map((c, i) => (i >= 3 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
      L.push(line(head));
      for (const row of rows) L.push(line(row));
    }
  }

  const tt = r.totals;
  L.push('', `totals: ${fmtCount(tt.tensors)} tensors, ${fmtCount(tt.params)} parameters, ${fmtCount(tt.bytes)} bytes (${fmtBytes(tt.bytes)}) of tensor data`);
  for (const [type, x] of Object.entries(tt.byType)) {
    const bpw = x.params ? ((x.bytes * 8) / x.params).toFixed(2) : '-';
    L.push(`  ${type.padEnd(6)} ${String(x.tensors).padStart(4)} tensors  ${fmtCount(x.params).padStart(15)} params  ${fmtBytes(x.bytes).padStart(10)}  ${bpw} bits/weight`);
  }
  if (r.i2sLayout) L.push('', `I2_S layout: read as ${r.i2sLayout.default} unless --i2s-layout says otherwise (${r.i2sLayout.note})`);
  return L.join('\n');
}

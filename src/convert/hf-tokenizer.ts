// Hugging Face tokenizer files -> GGUF tokenizer metadata (what llama.cpp's _set_vocab_gpt2 writes).
//
//   tokenizer.json          byte-level BPE only: model.vocab + added_tokens -> tokenizer.ggml.tokens, one per id
//                           0..vocab_size-1 (ids with no token become "[PAD<id>]", user-defined, as llama.cpp does);
//                           token_type: 1 normal, 3 control (added token with special: true), 4 user-defined
//                           (added, not special); merges in "a b" form (the [a, b] pair form is joined with a
//                           space, a space inside a part written as U+0120 like gguf-py); pre-tokenizer:
//                           Llama-3's split regex + ByteLevel(use_regex false) -> 'llama-bpe', plain
//                           ByteLevel(use_regex true) -> 'gpt2', anything else refused.
//   tokenizer_config.json   chat_template, add_bos_token / add_eos_token, bos/eos/pad token strings -> ids
//   generation_config.json  eos_token_id (int or list); bos_token_id. eos: tokenizer_config's eos_token, else
//                           config.json's, else generation_config's; eot: the <|eot_id|> token when present (if
//                           tokenizer_config calls it eos, eos becomes the other listed end id, e.g. <|end_of_text|>)
//   chat_template.jinja     chat template when tokenizer_config.json has none (newer transformers)
// A SentencePiece-only checkpoint (tokenizer.model, no tokenizer.json) is refused with a clear message.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GGUFValueType } from '../gguf/types.js';
import { metaArray, metaBool, metaString, metaU32, type GGUFMetaValue } from '../gguf/meta.js';
import { readJsonFile } from './checkpoint.js';
import { ConvertError } from './errors.js';

/** Llama-3's pre-tokenizer split regex, as it appears in tokenizer.json. */
export const LLAMA3_PRETOKENIZER_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface TokenizerInfo {
  entries: [string, GGUFMetaValue][];
  tokens: string[];
  tokenTypes: number[];
  merges: string[];
  pre: string;
  bos?: number;
  eos?: number;
  eot?: number;
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Detects the llama.cpp pre-tokenizer name of a tokenizer.json pre_tokenizer. */
export function detectPre(pre: unknown, path: string): string {
  const describe = () => (pre === undefined ? 'none (no pre_tokenizer)' : String(JSON.stringify(pre)).slice(0, 300));
  if (isObj(pre) && pre.type === 'ByteLevel') {
    if (pre.use_regex === false) throw new ConvertError(`${path}: a ByteLevel pre-tokenizer without its regex is not supported: ${describe()}`);
    return 'gpt2';
  }
  if (isObj(pre) && pre.type === 'Sequence' && Array.isArray(pre.pretokenizers)) {
    const parts = pre.pretokenizers as unknown[];
    const split = parts[0];
    const bl = parts[1];
    if (
      parts.length === 2 && isObj(split) && split.type === 'Split' && isObj(split.pattern) &&
      isObj(bl) && bl.type === 'ByteLevel' && bl.use_regex === false &&
      (split.behavior ?? 'Isolated') === 'Isolated' && split.invert !== true
    ) {
      if (split.pattern.Regex === LLAMA3_PRETOKENIZER_REGEX) return 'llama-bpe';
      throw new ConvertError(`${path}: the pre-tokenizer split regex is not Llama-3's; only Llama-3 ('llama-bpe') and GPT-2 byte-level pre-tokenizers are supported. Regex: ${JSON.stringify(split.pattern.Regex)}`);
    }
  }
  throw new ConvertError(`${path}: pre-tokenizer not supported (only Llama-3's 'llama-bpe' and GPT-2's byte-level are): ${describe()}`);
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObj(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
  return [];
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConvertError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Whether the post-processor prepends the bos token (TemplateProcessing single = [bos, $A, ...]). */
function postProcessorAddsBos(pp: unknown, bosText: string | undefined): boolean | undefined {
  if (!isObj(pp)) return undefined;
  if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
    for (const p of pp.processors) {
      const r = postProcessorAddsBos(p, bosText);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return undefined;
  const first = pp.single[0] as Json | undefined;
  const st = first && isObj(first.SpecialToken) ? (first.SpecialToken as Json) : undefined;
  return st !== undefined && (bosText === undefined || st.id === bosText);
}

export async function convertTokenizer(
  dir: string,
  vocabSize: number,
  cfg: { bosTokenId?: number; eosTokenIds: number[] },
): Promise<TokenizerInfo> {
  const tjPath = join(dir, 'tokenizer.json');
  const tj = await readJsonFile(tjPath, false);
  if (tj === undefined) {
    const sp = (await readText(join(dir, 'tokenizer.model'))) !== undefined;
    throw new ConvertError(
      sp
        ? `${dir} has only a SentencePiece tokenizer.model; SentencePiece tokenizers are not supported by wf convert (it needs a byte-level BPE tokenizer.json)`
        : `${dir} has no tokenizer.json`,
    );
  }
  if (!isObj(tj) || !isObj(tj.model)) throw new ConvertError(`${tjPath}: no 'model' object`);
  const model = tj.model;
  if (model.type !== 'BPE') {
    throw new ConvertError(`${tjPath}: tokenizer model type ${JSON.stringify(model.type)} is not supported (only byte-level BPE)`);
  }
  if (model.byte_fallback === true || (isObj(tj.pre_tokenizer) && tj.pre_tokenizer.type === 'Metaspace')) {
    throw new ConvertError(`${tjPath}: this is a SentencePiece-style BPE (byte_fallback / Metaspace); SentencePiece tokenizers are not supported by wf convert`);
  }
  if (tj.normalizer !== null && tj.normalizer !== undefined) {
    throw new ConvertError(`${tjPath}: tokenizer normalizer ${JSON.stringify(tj.normalizer).slice(0, 200)} is not supported (byte-level BPE tokenizers have none)`);
  }
  const pre = detectPre(tj.pre_tokenizer, tjPath);
  if (!isObj(model.vocab)) throw new ConvertError(`${tjPath}: model.vocab is not an object`);

  const tokens: (string | undefined)[] = new Array(vocabSize).fill(undefined);
  const types = new Array<number>(vocabSize).fill(TOKEN_TYPE.NORMAL);
  const idOf = new Map<string, number>();
  const place = (text: string, id: unknown, what: string) => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new ConvertError(`${tjPath}: ${what} '${text}' has invalid id ${JSON.stringify(id)}`);
    if (id >= vocabSize) {
      throw new ConvertError(`${tjPath}: ${what} '${text}' has id ${id}, but config.json's vocab_size is ${vocabSize}`);
    }
    tokens[id] = text;
    idOf.set(text, id);
  };
  for (const [text, id] of Object.entries(model.vocab)) place(text, id, 'token');
  const added = Array.isArray(tj.added_tokens) ? (tj.added_tokens as unknown[]) : [];
  for (const a of added) {
    if (!isObj(a) || typeof a.content !== 'string') throw new ConvertError(`${tjPath}: malformed added_tokens entry ${JSON.stringify(a)}`);
    place(a.content, a.id, 'added token');
    types[a.id as number] = a.special === true ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
  }
  const tokenList = tokens.map((t, i) => {
    if (t !== undefined) return t;
    types[i] = TOKEN_TYPE.USER_DEFINED;
    return `[PAD${i}]`;
  });

  const rawMerges = model.merges;
  if (!Array.isArray(rawMerges)) throw new ConvertError(`${tjPath}: model.merges is not an array`);
  const merges = rawMerges.map((m, i) => {
    if (typeof m === 'string') {
      if (m.split(' ').length !== 2) throw new ConvertError(`${tjPath}: merge ${i} ${JSON.stringify(m)} is not two tokens separated by one space`);
      return m;
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return m.map((part: string) => part.replace(/ /g, '\u0120')).join(' ');
    }
    throw new ConvertError(`${tjPath}: merge ${i} ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`);
  });

  const tcPath = join(dir, 'tokenizer_config.json');
  const tc = ((await readJsonFile(tcPath, false)) ?? {}) as Json;
  if (!isObj(tc)) throw new ConvertError(`${tcPath} is not a JSON object`);
  const gcPath = join(dir, 'generation_config.json');
  const gc = ((await readJsonFile(gcPath, false)) ?? {}) as Json;

  const resolve = (key: string): number | undefined => {
    const text = tokenContent(tc[key]);
    if (text === undefined) return undefined;
    const id = idOf.get(text);
    if (id === undefined) throw new ConvertError(`${tcPath}: ${key} ${JSON.stringify(text)} is not a token of ${tjPath}`);
    return id;
  };
  const checkId = (id: number | undefined, what: string) => {
    if (id !== undefined && id >= vocabSize) throw new ConvertError(`${what} ${id} is outside the vocabulary (vocab_size ${vocabSize})`);
    return id;
  };
  const bos = checkId(resolve('bos_token') ?? ids(gc.bos_token_id)[0] ?? cfg.bosTokenId, 'bos token id');
  let eos = checkId(resolve('eos_token') ?? cfg.eosTokenIds[0] ?? ids(gc.eos_token_id)[0], 'eos token id');
  const pad = resolve('pad_token');
  // End of turn: the <|eot_id|> token (Llama-3 chat), which generation_config usually lists among its eos ids.
  const eotText = '<|eot_id|>';
  let eot = idOf.get(eotText);
  if (eot !== undefined && eot === eos) {
    // tokenizer_config names <|eot_id|> as eos (chat checkpoints do): keep it as eot and take the other
    // end-of-sequence id config.json / generation_config.json list (e.g. <|end_of_text|>) as eos, so that
    // both stop generation
    const other = [...cfg.eosTokenIds, ...ids(gc.eos_token_id)].find((id) => id !== eot && id < vocabSize);
    if (other !== undefined) eos = other;
    else eot = undefined;
  }

  let addBos: boolean | undefined = typeof tc.add_bos_token === 'boolean' ? tc.add_bos_token : undefined;
  if (addBos === undefined) addBos = postProcessorAddsBos(tj.post_processor, bos !== undefined ? tokenList[bos] : undefined);
  const addEos = typeof tc.add_eos_token === 'boolean' ? tc.add_eos_token : undefined;

  let chat: string | undefined;
  const ct = tc.chat_template;
  if (typeof ct === 'string') chat = ct;
  else if (Array.isArray(ct)) {
    const def = ct.find((t) => isObj(t) && t.name === 'default') as Json | undefined;
    if (def && typeof def.template === 'string') chat = def.template;
  }
  chat ??= await readText(join(dir, 'chat_template.jinja'));

  const entries: [string, GGUFMetaValue][] = [
    ['tokenizer.ggml.model', metaString('gpt2')],
    ['tokenizer.ggml.pre', metaString(pre)],
    ['tokenizer.ggml.tokens', metaArray(GGUFValueType.STRING, tokenList)],
    ['tokenizer.ggml.token_type', metaArray(GGUFValueType.INT32, types)],
    ['tokenizer.ggml.merges', metaArray(GGUFValueType.STRING, merges)],
  ];
  if (bos !== undefined) entries.push(['tokenizer.ggml.bos_token_id', metaU32(bos)]);
  if (eos !== undefined) entries.push(['tokenizer.ggml.eos_token_id', metaU32(eos)]);
  if (eot !== undefined) entries.push(['tokenizer.ggml.eot_token_id', metaU32(eot)]);
  if (pad !== undefined) entries.push(['tokenizer.ggml.padding_token_id', metaU32(pad)]);
  if (addBos !== undefined) entries.push(['tokenizer.ggml.add_bos_token', metaBool(addBos)]);
  if (addEos !== undefined) entries.push(['tokenizer.ggml.add_eos_token', metaBool(addEos)]);
  if (chat !== undefined) entries.push(['tokenizer.chat_template', metaString(chat)]);
  return { entries, tokens: tokenList, tokenTypes: types, merges, pre, bos, eos, eot };
}

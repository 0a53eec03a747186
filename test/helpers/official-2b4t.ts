// A small model with the metadata quirks of the official microsoft/bitnet-b1.58-2B-4T-gguf file
// (SPEC.md §3): arch bitnet-b1.58, the Llama-3 vocabulary (taken from the oracle's llama3-vocab.gguf),
// no tokenizer.ggml.pre, no eot_token_id (eos is 128001), and the placeholder chat template of
// Microsoft's converter. Weights are random and tiny: the tests are about tokens, not text.
import { readGGUF } from '../../src/gguf/reader.js';
import { buildSyntheticModel, type SyntheticModelSpec } from '../../src/model/synthetic.js';
import { oracleArrayBuffer } from './oracle.js';

/**
 * The placeholder as third-party dumps of the official file describe it: BOS, "Human: " + content +
 * "\n\nBITNETAssistant: " + eos for a user turn, content + eos for an assistant turn, system dropped.
 * (Reconstructed from those descriptions, not byte-verified; detection keys on "BITNETAssistant".)
 */
export const PLACEHOLDER_TEMPLATE =
  "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nBITNETAssistant: ' + eos_token }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/** HF microsoft/bitnet-b1.58-2B-4T tokenizer_config.json chat_template, as SPEC.md §1 quotes it. */
export const HF_2B4T_TEMPLATE =
  "{%- for message in messages %}{%- if loop.first %}{{ bos_token }}{%- endif %}{%- if message['role'] == 'system' %}{{ 'System: ' + message['content'] + '<|eot_id|>' }}{%- elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '<|eot_id|>' }}{%- elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + '<|eot_id|>' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ 'Assistant: ' }}{%- endif %}";

let bytes: Promise<Uint8Array> | undefined;

/** The GGUF bytes (built once per test process: the vocabulary alone is 128256 tokens and 280147 merges). */
export function official2b4tQuirksModel(): Promise<Uint8Array> {
  bytes ??= (async () => {
    const vocab = await readGGUF(oracleArrayBuffer('llama3-vocab.gguf'));
    const spec: SyntheticModelSpec = {
      arch: 'bitnet-b1.58',
      name: 'official-2b4t-quirks',
      nEmbd: 64,
      nLayers: 1,
      nFF: 128,
      nHeads: 2,
      nKVHeads: 1,
      contextLength: 512,
      weightType: 'f32', // any width (I2_S needs rows of 128)
      seed: 7,
      tokenizer: {
        tokens: vocab.get('tokenizer.ggml.tokens') as string[],
        tokenTypes: Array.from(vocab.get('tokenizer.ggml.token_type') as ArrayLike<number>),
        merges: vocab.get('tokenizer.ggml.merges') as string[],
        bos: 128000,
        eos: 128001,
        pre: null,
        addBos: true,
        chatTemplate: PLACEHOLDER_TEMPLATE,
      },
    };
    return buildSyntheticModel(spec);
  })();
  return bytes;
}

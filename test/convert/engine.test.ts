// The point of "lossless in every format": one checkpoint converted to each outtype runs in the
// WrinkleFree engine with bit-identical logits (the engine sees the same ternary values and scales),
// and the tokenizer written by the converter encodes through the engine's tokenizer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { convertCheckpoint } from '../../src/convert/hf-to-gguf.js';
import { OUT_TYPES } from '../../src/convert/tensor-jobs.js';
import { loadModelFile } from '../../src/node/model-file.js';
import { buildCheckpoint, tempDir } from './helpers.js';

const out = tempDir('wf-conv-engine-');
after(() => out.cleanup());

test('every outtype gives the same logits in the engine', async () => {
  const ck = buildCheckpoint('latent-bf16', { seed: 5 });
  try {
    let ref: Float32Array | undefined;
    for (const outtype of OUT_TYPES) {
      const path = join(out.dir, `${outtype}.gguf`);
      await convertCheckpoint({ checkpointDir: ck.dir, outfile: path, outtype });
      const lm = await loadModelFile(path);
      try {
        assert.equal(lm.config.ffnAct, 'relu2');
        const tokens = lm.tokenizer.encode('the cat in a hat');
        // BOS (add_bos_token); 'the' = 't' + 'he' (merge 'h e'; 'Ġt he' needs a leading space); ' cat' = 'Ġ' 'c' 'a' 't';
        // ' in' = 'Ġ' 'in'; ' a' = 'Ġa'; ' hat' = 'Ġ' 'h' 'a' 't'
        assert.deepEqual(tokens, [261, 116, 257, 32, 99, 97, 116, 32, 259, 260, 32, 104, 97, 116], 'byte-level BPE from the converted tokenizer');
        const seq = lm.createSequence({ ctxSize: 16, batchSize: 16 });
        const logits = Float32Array.from(await seq.forward(tokens, { allLogits: false }));
        assert.equal(logits.length, 300);
        assert.ok(logits.every(Number.isFinite));
        if (!ref) ref = logits;
        else assert.deepEqual(logits, ref, `${outtype} logits differ from ${OUT_TYPES[0]}`);
      } finally {
        lm.dispose();
      }
    }
  } finally {
    ck.cleanup();
  }
});

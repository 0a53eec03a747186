// The built-in demo model: a small BitNet b1.58 trained by tools/train-demo (see its README) and
// converted with `wf convert --outtype tq1_0`, shipped in models/. wf_server, wf chat, wf run and
// wf logits use it when no model file is given. (The random-weight generator in
// src/model/synthetic.ts stays for tests that need a given shape.)
import { fileURLToPath } from 'node:url';
import type { LoadedModel, LoadOptions } from '../engine.js';
import { loadModelFile } from './model-file.js';

export const DEMO_MODEL_ID = 'wrinklefree-demo';

/** What the demo model is, for banners and the chat page. */
export const DEMO_MODEL_DESCRIPTION =
  "a 2.3-million-parameter BitNet b1.58 demo trained by WrinkleFree on the King James Bible, fortune cookies and The Devil's Dictionary " +
  '(Debian packages bible-kjv-text, fortunes, dict-devil): it writes English words in their style; it does not answer questions';

/** models/wrinklefree-demo.gguf of the package (from src/node when run from source, dist/src/node when built). */
export const DEMO_MODEL_FILE = fileURLToPath(
  new URL((import.meta.url.endsWith('/dist/src/node/demo-model.js') ? '../../../' : '../../') + 'models/wrinklefree-demo.gguf', import.meta.url),
);

export function loadDemoModel(opts: LoadOptions = {}): Promise<LoadedModel> {
  return loadModelFile(DEMO_MODEL_FILE, opts);
}

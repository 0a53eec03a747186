// The grammar worker: one XGrammar WebAssembly instance in a worker thread, in one of two roles.
//   - serving (given the vocabulary): a bounded cache of compiled grammars and the matchers of the
//     sequences that use them (compiled grammars and matchers live in the instance's memory, so
//     they live together);
//   - checking (no vocabulary): parses grammars and schemas without compiling them, so that the
//     inputs that abort or trap XGrammar's parser do it here, where no matcher lives.
// The main side is src/node/grammar-workers.ts; it may terminate this thread at any moment (a
// compile over its time budget, a cancelled compile, a fault), so nothing here needs cleaning up.
//
// Messages are handled one at a time, in order (a compile and the masks queued behind it wait
// for each other). After each accepted token the next mask is computed at once and posted, so the
// token loop finds it waiting when it next asks (the forward pass in between hides its cost).
import { parentPort, workerData } from 'node:worker_threads';
import { GrammarEngine, isWasmFault, type GrammarSpec, type VocabularyTexts } from '../generate/grammar.js';
import type { TokenConstraint } from '../generate/constraint.js';
import { loadXGrammar } from './xgrammar.js';

export type ToWorker =
  | { op: 'check'; id: number; spec: GrammarSpec }
  | { op: 'open'; id: number; spec: GrammarSpec }
  | { op: 'accept'; id: number; token: number }
  | { op: 'dispose'; id: number };

export type FromWorker =
  | { op: 'ready'; setupMs: number; heap: number; module?: WebAssembly.Module }
  | { op: 'setup-failed'; message: string }
  | { op: 'checked'; id: number; heap: number }
  | { op: 'opened'; id: number; compileMs: number; mask: Int32Array; heap: number; entries: number }
  | { op: 'open-failed'; id: number; message: string; fault: boolean; heap: number; entries: number }
  | { op: 'mask'; id: number; mask?: Int32Array; terminated?: boolean; error?: string; fault?: boolean };

const port = parentPort!;

/** What a worker is started with: the vocabulary (none: a checking worker), and XGrammar's compiled module once a first worker has it. */
export interface WorkerInit {
  vocab?: VocabularyTexts;
  module?: WebAssembly.Module;
}
const init = workerData as WorkerInit;

// XGrammar instantiates its WebAssembly itself; two things are caught on the way: the instance's
// memory (not exposed otherwise: its size is what this worker holds, and what the main side
// bounds), and the compiled module, handed back so that later workers skip compiling it (a fresh
// instance after a fault then costs a few tens of milliseconds less).
let memory: WebAssembly.Memory | undefined;
let compiledModule: WebAssembly.Module | undefined;
const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (...a: unknown[]) => Promise<unknown>;
(WebAssembly as { instantiate: unknown }).instantiate = async (source: unknown, imports?: unknown) => {
  let instance: WebAssembly.Instance;
  if (init.module && !(source instanceof WebAssembly.Module)) {
    compiledModule = init.module;
    instance = (await instantiate(init.module, imports)) as WebAssembly.Instance;
  } else {
    const r = await instantiate(source, imports);
    if (r instanceof WebAssembly.Instance) return r;
    ({ instance, module: compiledModule } = r as WebAssembly.WebAssemblyInstantiatedSource);
  }
  for (const v of Object.values(instance.exports)) if (v instanceof WebAssembly.Memory) memory = v;
  return { instance, module: compiledModule };
};
const heap = () => memory?.buffer.byteLength ?? 0;

type Matcher = TokenConstraint & { readonly terminated: boolean; dispose(): void };
const matchers = new Map<number, Matcher>();
let engine: GrammarEngine | undefined;
let xg = loadXGrammar();

function post(m: FromWorker): void {
  const mask = 'mask' in m ? m.mask : undefined;
  port.postMessage(m, mask ? [mask.buffer as ArrayBuffer] : []);
}

const isFault = (e: unknown) => isWasmFault(e) || (e as { fault?: boolean }).fault === true;

/** A checker's fresh instance, started (the bundle evaluated again: new memory, new stack). */
async function renew(): Promise<void> {
  xg = loadXGrammar(true);
  await GrammarEngine.check(xg, { type: 'gbnf', grammar: 'root ::= "ok"' });
}

/** The checker's instance has passed a check since it was made (a fault may then be an earlier input's doing). */
let used = false;

async function check(id: number, spec: GrammarSpec, retry = true): Promise<void> {
  try {
    await GrammarEngine.check(xg, spec);
  } catch (e) {
    const fault = isFault(e);
    if (fault) {
      // a checker holds nothing else: its instance is replaced here, before the next check; an
      // instance that had passed other inputs may have been left corrupt by one of them (the stack
      // overflows unnoticed), so the input is checked once more on the fresh one before it is blamed
      const again = retry && used;
      await renew();
      used = false;
      if (again) return check(id, spec, false);
    }
    post({ op: 'open-failed', id, message: (e as Error).message, fault, heap: heap(), entries: 0 });
    return;
  }
  used = true;
  post({ op: 'checked', id, heap: heap() });
}

async function open(id: number, spec: GrammarSpec): Promise<void> {
  const eng = engine!;
  let compiled;
  try {
    compiled = await eng.compile(spec);
  } catch (e) {
    post({ op: 'open-failed', id, message: (e as Error).message, fault: isFault(e), heap: heap(), entries: eng.cacheEntries });
    return;
  }
  const m = await compiled.start();
  matchers.set(id, m as Matcher);
  post({ op: 'opened', id, compileMs: compiled.compileMs, mask: await m.mask(), heap: heap(), entries: eng.cacheEntries });
}

async function accept(id: number, token: number): Promise<void> {
  const m = matchers.get(id);
  if (!m) return;
  try {
    m.accept(token);
    if (m.terminated) post({ op: 'mask', id, terminated: true });
    else post({ op: 'mask', id, mask: await m.mask() });
  } catch (e) {
    post({ op: 'mask', id, error: (e as Error).message, fault: isWasmFault(e) });
  }
}

async function handle(m: ToWorker): Promise<void> {
  switch (m.op) {
    case 'check':
      return check(m.id, m.spec);
    case 'open':
      return open(m.id, m.spec);
    case 'accept':
      return accept(m.id, m.token);
    case 'dispose':
      matchers.get(m.id)?.dispose();
      matchers.delete(m.id);
      return;
  }
}

try {
  const t0 = Date.now();
  if (init.vocab) engine = await GrammarEngine.create(xg, init.vocab);
  else await GrammarEngine.check(xg, { type: 'gbnf', grammar: 'root ::= "ok"' }); // starts the module
  let chain: Promise<void> = Promise.resolve();
  // An error that is not a compile error (those are answered) is left unhandled: the thread ends
  // with it, and the main side fails what this instance held.
  port.on('message', (m: ToWorker) => {
    chain = chain.then(() => handle(m));
  });
  post({ op: 'ready', setupMs: Date.now() - t0, heap: heap(), module: init.module ? undefined : compiledModule });
} catch (e) {
  post({ op: 'setup-failed', message: (e as Error).message });
}

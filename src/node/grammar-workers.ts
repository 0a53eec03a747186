// WorkerGrammarHost: XGrammar off the event loop, in worker threads (src/node/grammar-worker.ts),
// behind the GrammarHost interface the server is handed (src/generate/grammar-host.ts).
//
// Two kinds of worker, each its own WebAssembly instance:
//   - the checker parses each new grammar or schema first (no vocabulary, no matchers, a few
//     milliseconds). XGrammar's parser reports most errors by aborting, and deep nesting traps it;
//     an instance that aborted or trapped is unsound (its C++ stack is not unwound: the "poisoned
//     until restart" of issue #18, and matchers in it later fail with "memory access out of
//     bounds"). Here that costs nothing but the checker's instance: the checker makes itself a
//     fresh one (XGrammar's bundle evaluated again, the compiled module reused: tens of
//     milliseconds) before it answers, and no sequence loses its matcher. A checker that hangs or
//     dies is replaced by a spare that is already up.
//   - the serving worker compiles grammars that passed the check (a cache of them, by text) and
//     hosts the matchers started on them: compiled grammars and matchers live in its memory, so
//     they cannot move. Compiles run one at a time, in arrival order.
//
// What ends a serving worker, and what happens to the sequences whose matchers it holds:
//   - a fault while compiling (rare once the check passed) or matching: it is terminated, its
//     matchers fail with an error naming the restart (503), and a fresh worker takes over.
//   - its WebAssembly memory passing --grammar-memory (memory never shrinks, so replacing the
//     instance is the only way to give it back): it is retired, a fresh worker takes new compiles,
//     and it is terminated when its last matcher is disposed. This bounds compiled grammars by
//     bytes, not entries.
//   - a compile over --grammar-timeout: it is terminated at once (a compile cannot be interrupted
//     otherwise); the request gets a 400 naming the limit and its matchers fail (503).
//   - a client that leaves while its grammar compiles: terminated at once when it holds no
//     matchers; otherwise the compile may finish (its grammar is cached) within its budget. A check
//     whose client left just ends the checker.
// At most MAX_RETIRED retired workers are kept; past that the oldest is terminated.
import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { GrammarError, keyOf, vocabularyTexts, type GrammarSpec, type GrammarVocabulary, type VocabularyTexts } from '../generate/grammar.js';
import {
  checkGrammarLimits,
  checkNotEmpty,
  DEFAULT_GRAMMAR_LIMITS,
  GrammarAbortError,
  GrammarEngineLostError,
  GrammarLimitError,
  type GrammarHost,
  type GrammarHostFactory,
  type GrammarHostStats,
  type GrammarLimits,
  type HostedConstraint,
} from '../generate/grammar-host.js';
import type { FromWorker, ToWorker, WorkerInit } from './grammar-worker.js';
import { startWorker } from './worker-start.js';

/** Retired workers kept alive for their matchers; past this many the oldest is terminated. */
const MAX_RETIRED = 2;

interface PendingOpen {
  checked(): void;
  opened(m: Extract<FromWorker, { op: 'opened' }>): void;
  failed(m: Extract<FromWorker, { op: 'open-failed' }>): void;
  lost(e: Error): void;
}

type State = 'starting' | 'active' | 'retired' | 'dead';

/** One worker and what the main side knows of it. */
class GrammarWorker {
  state: State = 'starting';
  isReady = false;
  heap = 0;
  entries = 0;
  readonly ready: Promise<void>;
  readonly opens = new Map<number, PendingOpen>();
  readonly matchers = new Map<number, RemoteConstraint>();
  private readonly worker: Worker;

  constructor(
    init: WorkerInit,
    private readonly onDeath: (w: GrammarWorker, why: string) => void,
    onModule: (m: WebAssembly.Module) => void,
  ) {
    this.worker = startWorker(import.meta.url, 'grammar-worker', init); // the entry sits next to this file
    let setup!: { resolve: () => void; reject: (e: Error) => void };
    this.ready = new Promise<void>((resolve, reject) => (setup = { resolve, reject }));
    this.ready.catch(() => undefined);
    this.worker.on('message', (m: FromWorker) => {
      switch (m.op) {
        case 'ready':
          this.isReady = true;
          this.heap = m.heap;
          if (m.module) onModule(m.module);
          return setup.resolve();
        case 'setup-failed':
          setup.reject(new Error(`the grammar engine did not start: ${m.message}`));
          return this.end(`setup failed: ${m.message}`);
        case 'checked':
          this.heap = m.heap;
          return this.opens.get(m.id)?.checked();
        case 'opened':
        case 'open-failed':
          this.heap = m.heap;
          this.entries = m.entries;
          if (m.op === 'opened') this.opens.get(m.id)?.opened(m);
          else this.opens.get(m.id)?.failed(m);
          return;
        case 'mask':
          return this.matchers.get(m.id)?.answer(m);
      }
    });
    // dying before it was set up counts as a failed setup (not respawned in a loop: see onDeath)
    this.worker.on('error', (e) => {
      setup.reject(e);
      this.end(`${this.isReady ? 'it failed' : 'setup failed'}: ${e.message}`);
    });
    this.worker.on('exit', (code) => {
      setup.reject(new Error(`the grammar engine stopped (exit code ${code})`));
      this.end(`${this.isReady ? 'it exited' : 'setup failed: it exited'} (code ${code})`);
    });
    // an idle grammar engine does not keep the process alive; one that is setting up, compiling or
    // computing a mask someone waits for does (see hold()). Set after the listeners: adding a
    // 'message' listener refs the worker's port again.
    this.worker.unref();
    this.hold();
    void this.ready.then(
      () => this.release(),
      () => this.release(),
    );
  }

  private holds = 0;

  /** Keeps the process alive until the matching release() (work that someone waits for). */
  hold(): void {
    if (this.holds++ === 0 && this.state !== 'dead') this.worker.ref();
  }

  release(): void {
    if (--this.holds === 0 && this.state !== 'dead') this.worker.unref();
  }

  post(m: ToWorker): void {
    if (this.state !== 'dead') this.worker.postMessage(m);
  }

  /** Terminates the worker; pending compiles and matchers fail with `why`. */
  end(why: string): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    void this.worker.terminate();
    const err = new GrammarEngineLostError(`the grammar engine was restarted (${why}); this request's constrained output cannot go on`);
    for (const o of [...this.opens.values()]) o.lost(err);
    this.opens.clear();
    for (const c of [...this.matchers.values()]) c.lose(err);
    this.matchers.clear();
    this.onDeath(this, why);
  }
}

/** A sequence's matcher in a worker: masks arrive ahead of time (see grammar-worker.ts). */
class RemoteConstraint implements HostedConstraint {
  private next: Promise<Int32Array>;
  private settle: { resolve: (m: Int32Array) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;
  private closed = false;
  /** Date.now() when the mask being waited for was asked (0: none asked) */
  askedAt = 0;

  constructor(
    private readonly id: number,
    private readonly w: GrammarWorker,
    readonly compileMs: number,
    first: Int32Array,
    private readonly words: number,
    private readonly onFault: () => void,
    private readonly onDispose: () => void,
  ) {
    this.next = Promise.resolve(first);
  }

  mask(): Promise<Int32Array> {
    return this.failed ? Promise.reject(this.failed) : this.next;
  }

  accept(token: number): void {
    if (this.failed) throw this.failed;
    this.next = new Promise<Int32Array>((resolve, reject) => (this.settle = { resolve, reject }));
    this.next.catch(() => undefined); // a failure is reported by mask()
    this.askedAt = Date.now();
    this.w.hold();
    this.w.post({ op: 'accept', id: this.id, token });
  }

  answer(m: Extract<FromWorker, { op: 'mask' }>): void {
    const s = this.settle;
    if (s) this.w.release();
    this.settle = undefined;
    this.askedAt = 0;
    if (m.error !== undefined) {
      this.failed = m.fault ? new GrammarEngineLostError(`the grammar engine failed: ${m.error}`) : new Error(m.error);
      s?.reject(this.failed);
      if (m.fault) this.onFault();
      return;
    }
    s?.resolve(m.mask ?? new Int32Array(this.words)); // after the stop token nothing more is allowed
  }

  lose(e: Error): void {
    this.failed ??= e;
    this.settle?.reject(e);
    this.settle = undefined;
  }

  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    this.w.post({ op: 'dispose', id: this.id });
    this.w.matchers.delete(this.id);
    this.onDispose();
  }
}

interface Job {
  spec: GrammarSpec;
  signal?: AbortSignal;
  resolve(c: HostedConstraint): void;
  reject(e: Error): void;
  /** answered (or aborted): nothing more goes to the caller */
  done: boolean;
  /** called when the signal aborts while the job runs */
  abortRunning?: () => void;
  /** compiled a second time, on a fresh serving worker, after a fault */
  retried?: boolean;
}

/** How a stage ended: go on to the compile, stop (answered), or compile again on a fresh worker. */
type StageEnd = 'next' | 'stop' | 'retry';

/** Specs that passed the check, by hash of their text (a bounded set, oldest forgotten first). */
const CHECKED_KEYS = 4096;

export class WorkerGrammarHost implements GrammarHost {
  private readonly vocab: VocabularyTexts;
  private readonly limits: GrammarLimits;
  private readonly words: number;
  /** XGrammar's compiled WebAssembly module, from the first worker set up (later ones skip compiling it) */
  private module: WebAssembly.Module | undefined;
  private serving: GrammarWorker;
  private checker: GrammarWorker;
  private spareChecker: GrammarWorker | undefined;
  private readonly retired: GrammarWorker[] = [];
  private readonly checked = new Map<string, true>();
  /** specs that ran past the time budget, by hash (bounded like `checked`): refused at once when they come again */
  private readonly timedOut = new Map<string, true>();
  private chain: Promise<void> = Promise.resolve();
  private ids = 0;
  private closed = false;
  private readonly counts = { compiles: 0, compileErrors: 0, timeouts: 0, restarts: 0, faults: 0 };
  private readonly watchdog: ReturnType<typeof setInterval>;

  constructor(vocab: GrammarVocabulary, limits: Partial<GrammarLimits> = {}) {
    this.vocab = vocabularyTexts(vocab);
    this.limits = { ...DEFAULT_GRAMMAR_LIMITS, ...limits };
    this.words = Math.ceil(vocab.vocabSize / 32);
    this.serving = this.spawn(true);
    this.checker = this.spawn(false);
    this.spareChecker = this.spawn(false);
    // a mask that does not come (a matcher stuck inside XGrammar) ends its worker
    this.watchdog = setInterval(() => this.checkMasks(), 250);
    this.watchdog.unref();
  }

  /** Resolves once the serving worker is set up (start-up, so the first request does not wait). */
  async whenReady(): Promise<void> {
    await Promise.all([this.serving.ready, this.checker.ready]);
  }

  open(spec: GrammarSpec, signal?: AbortSignal): Promise<HostedConstraint> {
    if (this.closed) return Promise.reject(new Error('the grammar engine is closed'));
    checkGrammarLimits(spec, this.limits);
    if (signal?.aborted) return Promise.reject(new GrammarAbortError('request aborted'));
    return new Promise<HostedConstraint>((resolve, reject) => {
      const job: Job = { spec, signal, resolve, reject, done: false };
      const onAbort = () => {
        if (job.abortRunning) return job.abortRunning();
        job.done = true; // still queued: it never starts
        reject(new GrammarAbortError('request aborted while its grammar waited to compile'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.chain = this.chain.then(() => this.run(job)).finally(() => signal?.removeEventListener('abort', onAbort));
    });
  }

  /** Checks (unless known good) and compiles one job; resolves when the workers are free for the next. */
  private async run(job: Job): Promise<void> {
    const key = createHash('sha256').update(keyOf(job.spec)).digest('base64');
    if (this.timedOut.has(key)) {
      // the same text again: refused at once, without ending another worker
      job.done = true;
      this.counts.compileErrors++;
      return job.reject(new GrammarLimitError(`compiling it took longer than the limit of ${this.limits.timeoutMs} ms (--grammar-timeout) before`, 'time'));
    }
    if (!this.checked.has(key)) {
      if ((await this.stage(job, false, key)) !== 'next') return;
      this.checked.set(key, true);
      if (this.checked.size > CHECKED_KEYS) this.checked.delete(this.checked.keys().next().value!);
    }
    // a fault on a grammar that passed the check may be an earlier grammar's doing (a corrupt
    // instance): the grammar gets one more try on a fresh worker before it is blamed
    if ((await this.stage(job, true, key)) === 'retry') await this.stage(job, true, key);
  }

  /** One stage of a job on its worker: the check (serving = false) or the compile. */
  private async stage(job: Job, serving: boolean, key: string): Promise<StageEnd> {
    if (job.done) return 'stop';
    let w: GrammarWorker;
    try {
      w = await this.ready(serving);
    } catch (e) {
      job.done = true;
      job.reject(e as Error);
      return 'stop';
    }
    if (job.done) return 'stop';
    const id = ++this.ids;
    return new Promise<StageEnd>((free) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (end: StageEnd = 'stop') => {
        clearTimeout(timer);
        if (w.opens.delete(id)) w.release();
        job.abortRunning = undefined;
        free(job.done ? 'stop' : end);
      };
      const answer = (f: () => void) => {
        if (job.done) return;
        job.done = true;
        f();
      };
      const refuse = (e: Error) => {
        this.counts.compileErrors++;
        answer(() => job.reject(e));
      };
      timer = setTimeout(() => {
        finish();
        this.counts.timeouts++;
        this.counts.compiles++;
        this.timedOut.set(key, true);
        if (this.timedOut.size > CHECKED_KEYS) this.timedOut.delete(this.timedOut.keys().next().value!);
        w.end('a compile ran past --grammar-timeout');
        refuse(new GrammarLimitError(`compiling it took longer than the limit of ${this.limits.timeoutMs} ms (--grammar-timeout)`, 'time'));
      }, this.limits.timeoutMs);
      job.abortRunning = () => {
        answer(() => job.reject(new GrammarAbortError('request aborted while its grammar compiled')));
        if (w.matchers.size === 0) {
          finish();
          w.end('its compile was cancelled');
        }
        // else: the compile finishes (or meets its budget) and its grammar is cached
      };
      w.opens.set(id, {
        checked: () => finish('next'),
        opened: (m) => {
          finish();
          if (m.compileMs > 0) this.counts.compiles++;
          const c = new RemoteConstraint(id, w, m.compileMs, m.mask, this.words, () => this.fault(w), () => this.afterDispose(w));
          w.matchers.set(id, c);
          this.checkMemory(w);
          if (job.done) return c.dispose();
          try {
            checkNotEmpty(m.mask);
          } catch (e) {
            c.dispose();
            return refuse(e as Error);
          }
          answer(() => job.resolve(c));
        },
        failed: (m) => {
          if (m.fault && serving && !job.retried) {
            job.retried = true;
            finish('retry');
            return this.fault(w);
          }
          finish();
          this.counts.compiles++;
          if (m.fault && w === this.checker) {
            // the checker replaced its instance itself (grammar-worker.ts), before answering
            this.counts.faults++;
            this.counts.restarts++;
          } else if (m.fault) this.fault(w);
          else this.checkMemory(w);
          refuse(new GrammarError(m.message, m.fault));
        },
        lost: (e) => {
          finish();
          answer(() => job.reject(e));
        },
      });
      w.hold();
      w.post({ op: serving ? 'open' : 'check', id, spec: job.spec });
    });
  }

  /** The serving worker (or the checker) once set up; one that fails to set up is replaced (for the next request). */
  private async ready(serving: boolean): Promise<GrammarWorker> {
    let w = serving ? this.serving : this.checker;
    if (w.state === 'dead') {
      this.replace(w); // it failed to set up: a new try, now that a request needs it
      w = serving ? this.serving : this.checker;
    }
    try {
      await w.ready;
    } catch (e) {
      if (w.state !== 'dead') w.end('setup failed');
      throw e;
    }
    if (w.state === 'dead') throw new Error('the grammar engine stopped while it started');
    if (w.state === 'starting') w.state = 'active';
    return w;
  }

  private spawn(serving: boolean): GrammarWorker {
    const init: WorkerInit = { vocab: serving ? this.vocab : undefined, module: this.module };
    return new GrammarWorker(init, (w, why) => this.onDeath(w, why), (m) => (this.module ??= m));
  }

  /** An abort or trap in `w`: it serves nothing more (its matchers fail; see the top of this file). */
  private fault(w: GrammarWorker): void {
    this.counts.faults++;
    w.end('an abort or trap inside XGrammar');
  }

  /** No new compiles go to `w`; it lives on for its matchers and ends with the last one. */
  private retire(w: GrammarWorker): void {
    if (w.state === 'retired' || w.state === 'dead') return;
    w.state = 'retired';
    if (w === this.serving) this.replace(w);
    this.retired.push(w);
    while (this.retired.length > MAX_RETIRED) this.retired[0]!.end('too many engine instances were retired at once');
    this.afterDispose(w);
  }

  private checkMemory(w: GrammarWorker): void {
    if (w.heap > this.limits.memoryBytes) {
      if (w === this.checker) w.end('its memory passed --grammar-memory');
      else this.retire(w);
    }
  }

  private afterDispose(w: GrammarWorker): void {
    if (w.state === 'retired' && w.matchers.size === 0 && w.opens.size === 0) w.end('retired');
  }

  /** A fresh worker in `w`'s place (the checker's spare, already up, takes over at once). */
  private replace(w: GrammarWorker): void {
    if (this.closed) return;
    this.counts.restarts++;
    if (w === this.serving) {
      this.serving = this.spawn(true);
    } else if (w === this.checker) {
      this.checker = this.spareChecker ?? this.spawn(false);
      this.spareChecker = this.spawn(false);
    }
  }

  private onDeath(w: GrammarWorker, why: string): void {
    const i = this.retired.indexOf(w);
    if (i >= 0) this.retired.splice(i, 1);
    if (this.closed) return;
    if (/^setup failed/.test(why)) {
      // not respawned here (it would fail again, in a loop): the next request tries (ready())
      if (w === this.spareChecker) this.spareChecker = undefined;
      return;
    }
    if (w === this.spareChecker) this.spareChecker = this.spawn(false);
    else if (w === this.serving || w === this.checker) {
      if (!/^(a compile ran past|its compile was cancelled|its memory|an abort or trap)/.test(why)) this.counts.faults++; // it crashed
      this.replace(w);
    }
  }

  /** A mask that takes longer than two compile budgets: the worker is stuck; end it. */
  private checkMasks(): void {
    const limit = 2 * this.limits.timeoutMs + 1000;
    const now = Date.now();
    for (const w of [this.serving, ...this.retired]) {
      for (const c of w.matchers.values()) {
        if (c.askedAt > 0 && now - c.askedAt > limit) {
          w.end('a token mask took longer than twice --grammar-timeout');
          break;
        }
      }
    }
  }

  stats(): GrammarHostStats {
    const live = [this.serving, this.checker, this.spareChecker, ...this.retired].filter((w): w is GrammarWorker => !!w && w.state !== 'dead');
    return {
      ...this.counts,
      memoryBytes: live.reduce((a, w) => a + w.heap, 0),
      cacheEntries: this.serving.entries,
      matchers: live.reduce((a, w) => a + w.matchers.size, 0),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    for (const w of [this.serving, this.checker, this.spareChecker, ...this.retired]) w?.end('the server is closing');
  }
}

/** The host factory an entry point hands the server. */
export function workerGrammarHosts(limits: Partial<GrammarLimits> = {}): GrammarHostFactory {
  return (vocab: GrammarVocabulary) => new WorkerGrammarHost(vocab, limits);
}

// Sleep mode (--sleep-idle-seconds N, as llama-server's): after N seconds without work the server
// releases the model's memory (weights, kernels and their threads, the KV pool and every cache in
// it: GenerationService.release()) and keeps answering what needs no model; the next request that
// needs the model reloads it (from the same file, checked unchanged by the reload the entry point
// hands in) and waits for it.
//
// Work is a request on any route but the read-only ones below: a generation, /tokenize, a template
// rendering... Read-only routes neither wake the server nor count as work (a dashboard polling
// /metrics or a probe on /health does not keep the model in memory):
//   /health, /livez, /props (is_sleeping: true), /models, /v1/models, /slots (idle, empty slots),
//   /metrics (the figures as they were on entering sleep, below), / (the chat page), /cors-proxy.
//
// /metrics while asleep: the state is frozen when the server goes to sleep (nothing runs until it
// wakes), and when nothing ran since the last scrape, that scrape's figures (process memory
// included) are the ones kept, so a scraper sees exactly what it saw last; llama-server does the
// same. Throughput gauges still report per scrape window (llama-metrics.ts).
//
// A reload that fails (the file is gone or changed, no memory) answers that request 503 naming
// why; the server stays up and asleep, and the next request tries again.
import type { LoadedModel } from '../engine.js';
import { ApiError } from './errors.js';
import type { GenerationService } from './service.js';

export interface SleepOptions {
  /** milliseconds without work before the model is released */
  idleMs: number;
  /** loads the model again (the same file, checked unchanged); its error message says what is wrong */
  reload: () => Promise<LoadedModel>;
  /** a line for the server's log (stderr); default none */
  log?: (line: string) => void;
}

/** Paths that answer while asleep without waking the model (and are not work). */
export function readOnlyWhileAsleep(path: string): boolean {
  return READ_ONLY.has(path) || path.startsWith('/v1/models/');
}

// (/cors-proxy needs no model either: it fetches for the web UI, cors-proxy.ts)
const READ_ONLY = new Set(['/', '/index.html', '/health', '/v1/health', '/livez', '/props', '/models', '/v1/models', '/slots', '/metrics', '/cors-proxy']);

export class SleepController<Frozen> {
  private active = 0;
  private lastWork: number;
  private timer: NodeJS.Timeout | null = null;
  private waking: Promise<void> | null = null;
  private closed = false;
  private lastScrape: { at: number; state: Frozen } | null = null;
  /** the /metrics state taken on entering sleep (null while awake) */
  private frozen: Frozen | null = null;
  /** times the model was released and reloaded (for tests and the log) */
  sleeps = 0;
  wakes = 0;

  constructor(
    private readonly service: GenerationService,
    private readonly opts: SleepOptions,
    /** the live /metrics state, taken on entering sleep when no scrape can stand for it */
    private readonly capture: () => Frozen,
    private readonly clock: () => number = () => performance.now(),
  ) {
    if (!(opts.idleMs > 0)) throw new Error(`the idle time before sleeping must be positive, got ${opts.idleMs} ms`);
    this.lastWork = clock();
    this.arm(opts.idleMs);
  }

  /** True while the model is released. */
  get sleeping(): boolean {
    return this.service.released;
  }

  /** The /metrics state to serve: the frozen one while asleep, else null (serve live, then call scraped()). */
  get frozenMetrics(): Frozen | null {
    return this.sleeping ? this.frozen : null;
  }

  /** A live scrape's state, kept to stand for the sleeping server when nothing runs after it. */
  scraped(state: Frozen): void {
    this.lastScrape = { at: this.clock(), state };
  }

  /**
   * A request that needs the model begins: wakes the model if it sleeps (waiting for the reload;
   * a failed reload is an ApiError 503 naming why) and keeps it awake until the returned function
   * is called.
   */
  async enter(): Promise<() => void> {
    this.active++;
    this.lastWork = this.clock();
    try {
      if (this.service.released) await this.wake();
    } catch (e) {
      this.leave();
      throw e;
    }
    let left = false;
    return () => {
      if (!left) this.leave();
      left = true;
    };
  }

  /** Stops the idle timer (the server closes). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private leave(): void {
    this.active--;
    this.lastWork = this.clock();
    if (this.active === 0) this.arm(this.opts.idleMs);
  }

  private arm(ms: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), Math.max(1, ms));
    this.timer.unref(); // an idle timer never keeps the process alive
  }

  private check(): void {
    this.timer = null;
    if (this.closed || this.active > 0 || this.service.released) return;
    const idle = this.clock() - this.lastWork;
    if (idle < this.opts.idleMs) return this.arm(this.opts.idleMs - idle);
    // nothing ran since the last scrape: it stands for the sleeping server as it is
    const frozen = this.lastScrape && this.lastScrape.at >= this.lastWork ? this.lastScrape.state : this.capture();
    if (!this.service.release()) return this.arm(this.opts.idleMs); // a generation runs or waits after all
    this.frozen = frozen;
    this.sleeps++;
    this.opts.log?.(`sleeping: no work for ${(idle / 1000).toFixed(1)} s: the model's memory (weights, KV cache) is released until the next request that needs it`);
  }

  private wake(): Promise<void> {
    this.waking ??= (async () => {
      const t0 = this.clock();
      try {
        const lm = await this.opts.reload();
        this.service.restore(lm);
      } catch (e) {
        const why = (e as Error)?.message ?? String(e);
        this.opts.log?.(`waking failed: ${why}`);
        throw new ApiError(503, `the server was asleep and could not reload its model: ${why}`, 'server_error', null, 'model_reload_failed');
      } finally {
        this.waking = null;
      }
      this.frozen = null;
      this.lastScrape = null;
      this.wakes++;
      this.opts.log?.(`awake: the model was reloaded in ${Math.round(this.clock() - t0)} ms`);
    })();
    return this.waking;
  }
}

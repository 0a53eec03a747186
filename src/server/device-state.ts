// What the server does once its GPU is gone (the device was lost: a driver reset, a GPU removed, an
// out-of-memory the driver could not recover from). The request running at that moment ends with the
// error that says so; from then on the model cannot run, and it has no copy of its weights on the CPU
// to fall back on (the GPU holds them), so every new request is answered 503 `device_lost`, and
// /health and /livez answer 503, so that a supervisor (the chart's liveness probe on /livez, systemd)
// restarts the process: a fresh start opens the device again, or runs --device cpu.
import type { LoadedModel } from '../engine.js';
import { ApiError } from './errors.js';

/** Why the model's device is unusable, or null while it works (always null on the CPU). */
export function deviceLost(lm: LoadedModel): string | null {
  return lm.model.gpu?.lost ?? null;
}

/** The 503 a new request gets once the device is lost. */
export function deviceLostError(reason: string): ApiError {
  return new ApiError(503, `the GPU device was lost (${reason}): this server cannot generate any more; restart it (or run it with --device cpu)`,
    'server_error', null, 'device_lost');
}

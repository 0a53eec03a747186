// The browser app's link parameters: ?model=URL&prompt=TEXT&n=N&temp=T (plus threads=N, ctx=N,
// device=auto|cpu|webgpu)
// load a model on open and, with a prompt, generate and publish window.wfResult.
import { parseDeviceChoice, type DeviceChoice } from '../device.js';

export interface PageParams {
  model?: string;
  prompt?: string;
  n: number;
  temp: number;
  threads?: number;
  ctx?: number;
  /** where the model runs: WebGPU when there is an adapter (auto), or forced */
  device?: DeviceChoice;
}

function num(q: URLSearchParams, key: string, ok: (v: number) => boolean, what: string): number | undefined {
  const s = q.get(key);
  if (s === null || s === '') return undefined;
  const v = Number(s);
  if (!ok(v)) throw new Error(`link parameter ${key}=${s} must be ${what}`);
  return v;
}

function deviceParam(s: string | null): DeviceChoice {
  try {
    return parseDeviceChoice(s);
  } catch {
    throw new Error(`link parameter device=${s} must be auto, cpu or webgpu`);
  }
}

export function parseParams(search: string): PageParams {
  const q = new URLSearchParams(search);
  const int = (v: number) => Number.isInteger(v) && v >= 1;
  return {
    model: q.get('model') || undefined,
    prompt: q.get('prompt') ?? undefined,
    n: num(q, 'n', int, 'a whole number >= 1') ?? 64,
    temp: num(q, 'temp', (v) => Number.isFinite(v) && v >= 0, 'a number >= 0') ?? 0.8,
    threads: num(q, 'threads', int, 'a whole number >= 1'),
    ctx: num(q, 'ctx', int, 'a whole number >= 1'),
    device: q.has('device') ? deviceParam(q.get('device')) : undefined,
  };
}

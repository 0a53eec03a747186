// n > 1: several choices of one prompt. Each choice is a generation of its own on a slot of its own;
// the step runner reads their shared prompt once and copies its keys/values to the others
// (step-runner.ts), so n choices cost one prompt reading. A request's seed gives choice i the seed
// seed + i (the same seed would give n identical samples). The response counts the prompt once in
// usage (as OpenAI does) and the completion tokens of every choice.
import { ApiError } from './errors.js';
import type { GenerationParams } from './requests.js';
import * as R from './responses.js';
import type { GenerationService, RunInfo } from './service.js';

/** The request's n, refused (400 naming `n`) when the server cannot run that many sequences at once. */
export function checkChoices(service: GenerationService, params: GenerationParams): number {
  const n = params.n ?? 1;
  const slots = service.stats().slots;
  if (n > slots) {
    throw new ApiError(400, `'n' is ${n} but this server runs ${slots} sequences at once (--parallel): at most n=${slots}`, 'invalid_request_error', 'n', 'invalid_value');
  }
  return n;
}

/** Choice i's settings: the request's, with seed + i when it has a seed. */
export function choiceParams(params: GenerationParams, i: number): GenerationParams {
  const seed = params.sampler.seed;
  return seed === undefined || i === 0 ? params : { ...params, sampler: { ...params.sampler, seed: seed + i } };
}

/** A streamed chunk with its choice's index. */
export function withIndex<T>(data: T, index: number): T {
  const choices = (data as { choices?: { index: number }[] }).choices;
  if (choices) for (const c of choices) c.index = index;
  return data;
}

/** Usage of n choices of one prompt: the prompt once (and what of it was cached), every completion. */
export function mergedUsage(infos: readonly RunInfo[]): { usage: R.Usage; timings: ReturnType<typeof R.timings> } {
  const first = infos[0]!;
  const completion = infos.reduce((sum, i) => sum + R.completionTokens(i.result), 0);
  return { usage: R.usage(first.promptTokens, completion, first.cachedTokens), timings: R.timings(first.result, first.cachedTokens) };
}

/** One response body holding every choice's (each body has one choice), with merged usage. */
export function mergeChoices(bodies: readonly any[], merged: { usage: R.Usage; timings: unknown }): unknown {
  return {
    ...bodies[0],
    choices: bodies.map((b, index) => ({ ...b.choices[0], index })),
    usage: merged.usage,
    timings: merged.timings,
  };
}

// Errors the API reports, in OpenAI's shape:
//   HTTP <status>  { "error": { "message": "...", "type": "...", "param": "..." | null, "code": "..." | null } }
// Request validation throws ApiError; the HTTP layer turns any other exception into a 500 without
// crashing.

import { NoTokenError } from '../generate/sampler.js';

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = 'ApiError';
  /** extra response headers (e.g. Retry-After on a 503) */
  readonly headers: Record<string, string> = {};
  /** for a prompt over the context: its tokens and the context (llama.cpp's routes report them, llama-errors.ts) */
  context?: { promptTokens: number; contextLength: number; atLeast: boolean };
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/**
 * Any exception as the API reports it: an ApiError as it is; a request that left no token to sample
 * (NoTokenError: its logit_bias or constraint) as a 400; anything else as a 500 "internal error".
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof NoTokenError) return new ApiError(400, e.message, 'invalid_request_error', e.reason === 'bias' ? 'logit_bias' : null, 'no_token_possible');
  return new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
}

/** 400 for a request field: its name goes in `param`. */
export function invalidParam(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

export function missingParam(param: string): ApiError {
  return new ApiError(400, `missing required parameter '${param}'`, 'invalid_request_error', param, 'missing_required_parameter');
}

export function invalidType(param: string, want: string, got: unknown): ApiError {
  return new ApiError(400, `'${param}' must be ${want}, got ${describe(got)}`, 'invalid_request_error', param, 'invalid_type');
}

export function unsupported(param: string, message: string): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, 'unsupported_value');
}

/** `atLeast`: promptTokens is a lower bound from the prompt's length (it was not tokenized). */
export function contextLengthExceeded(param: string, promptTokens: number, contextLength: number, atLeast = false): ApiError {
  const err = new ApiError(
    400,
    `this model's maximum context length is ${contextLength} tokens, but the prompt has ${atLeast ? 'at least ' : ''}${promptTokens} tokens ` +
      '(it must leave room for at least one generated token)',
    'invalid_request_error',
    param,
    'context_length_exceeded',
  );
  err.context = { promptTokens, contextLength, atLeast };
  return err;
}

/** A short description of a JSON value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length > 40 ? `a string ("${v.slice(0, 40)}...")` : `"${v}"`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

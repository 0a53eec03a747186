// Error bodies on llama.cpp's own routes. wf_server answers errors in OpenAI's shape (errors.ts);
// where llama-server's differs, OpenAI's wins on /v1/... and llama.cpp's on the routes without /v1
// (/completion, /completions, /chat/completions, /infill, /tokenize, ...), which llama.cpp's clients
// and its own tests call:
//   - a prompt over the context: type `exceed_context_size_error`, with `n_prompt_tokens` and
//     `n_ctx` beside the message (OpenAI: `invalid_request_error`, code `context_length_exceeded`);
//   - a missing or wrong API key: type `authentication_error` (OpenAI: `invalid_request_error`,
//     code `invalid_api_key`).
// `code` and `param` stay as they are, so a client that reads either shape finds what it looks for.
import type { ApiError, ErrorBody } from './errors.js';

/** True for a route path that is llama.cpp's own (no /v1 prefix). */
export function isLlamaRoute(path: string): boolean {
  return path !== '/v1' && !path.startsWith('/v1/');
}

type LlamaErrorBody = { error: ErrorBody['error'] & { n_prompt_tokens?: number; n_ctx?: number } };

/** The body of `err` as the route `path` answers it. */
export function errorBodyFor(err: ApiError, path: string): LlamaErrorBody {
  const body: LlamaErrorBody = err.body();
  if (!isLlamaRoute(path)) return body;
  if (err.code === 'context_length_exceeded' && err.context) {
    const { promptTokens, contextLength, atLeast } = err.context;
    body.error.type = 'exceed_context_size_error';
    body.error.message =
      `request (${atLeast ? 'at least ' : ''}${promptTokens} tokens) exceeds the available context size (${contextLength} tokens): ` +
      'the prompt must leave room for at least one generated token';
    body.error.n_prompt_tokens = promptTokens;
    body.error.n_ctx = contextLength;
  } else if (err.status === 401 && err.code === 'invalid_api_key') {
    body.error.type = 'authentication_error';
  }
  return body;
}

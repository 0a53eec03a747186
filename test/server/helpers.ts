// Shared by the server tests: a tiny synthetic model on the test kernels, and a server on a free port.
// Servers started here that a test leaves open (it failed before closing them) are closed when the
// test file's tests end, so the file's process can exit (Node 20's runner has no force exit).
import { after } from 'node:test';
import type OpenAI from 'openai';
import { loadModel, type LoadedModel } from '../../src/engine.js';
import { buildSyntheticModel, type SyntheticModelSpec } from '../../src/model/synthetic.js';
import { GenerationService, type ServiceOptions } from '../../src/server/service.js';
import type { GenerationParams } from '../../src/server/requests.js';
import { ApiServer, type HttpServerOptions } from '../../src/server/http.js';
import { testKernels } from '../helpers/kernels.js';

/** One layer, 128 wide, the 264-token byte-level vocabulary (BOS 261, EOS 262, EOT 263). */
export const TINY_SPEC: SyntheticModelSpec = {
  name: 'tiny-test',
  nEmbd: 128,
  nLayers: 1,
  nFF: 256,
  nHeads: 2,
  nKVHeads: 1,
  contextLength: 1024,
  vocabSize: 264,
  seed: 11,
};

export const EOS = 262;
export const EOT = 263;
/** logit_bias that bans the end-of-generation tokens (so max_tokens is always reached) */
export const NO_EOG = { [String(EOS)]: -100, [String(EOT)]: -100 };

/** Greedy generation parameters for the service's tests: no end-of-generation token, maxTokens, then `over`. */
export function greedyParams(maxTokens: number, over: Partial<GenerationParams> = {}): GenerationParams {
  return { sampler: { temperature: 0, logitBias: NO_EOG }, maxTokens, stop: [], ignoreEos: false, stream: false, includeUsage: false, ...over };
}

export function tinyModelBytes(spec: Partial<SyntheticModelSpec> = {}): Uint8Array {
  return buildSyntheticModel({ ...TINY_SPEC, ...spec });
}

export async function tinyModel(spec: Partial<SyntheticModelSpec> = {}): Promise<LoadedModel> {
  return loadModel(tinyModelBytes(spec), { kernels: await testKernels() });
}

export interface TestServer {
  url: string;
  base: string;
  server: ApiServer;
  service: GenerationService;
  logs: string[];
  close(): Promise<void>;
}

export async function startTestServer(
  lm: LoadedModel,
  svc: Partial<ServiceOptions> = {},
  http: HttpServerOptions = {},
): Promise<TestServer> {
  const service = new GenerationService(lm, { modelId: 'tiny-test', ctxSize: 512, slots: 1, ...svc });
  const logs: string[] = [];
  const server = new ApiServer(service, { log: (l) => logs.push(l), ...http });
  const { url } = await server.listen(0, '127.0.0.1');
  openServers.add(server);
  const close = async () => {
    openServers.delete(server);
    await server.close();
  };
  return { url, base: `${url}/v1`, server, service, logs, close };
}

/** test servers not closed yet */
const openServers = new Set<ApiServer>();
after(async () => {
  const left = [...openServers];
  openServers.clear();
  await Promise.all(left.map((s) => s.close().catch(() => undefined)));
});

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Polls until `cond` holds (or fails after `ms`). */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The function tool the tool-call tests ask for: get_weather(city of at most 10 characters, unit C or F). */
export function weatherTool(strict?: boolean): OpenAI.Chat.ChatCompletionFunctionTool {
  return {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['C', 'F'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
      ...(strict === undefined ? {} : { strict }),
    },
  };
}

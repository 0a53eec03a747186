// wf serve [-m FILE.gguf] [--port P] ...: the OpenAI-compatible server, same flags as wf_server.
import { serverMain } from '../wf_server.js';

export async function run(argv: string[]): Promise<number> {
  return serverMain(argv, 'wf serve');
}

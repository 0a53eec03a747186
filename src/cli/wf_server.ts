// `wf_server`: the OpenAI-compatible HTTP server (bin/wf_server.js). See src/server/cli.ts for the
// flags; `wf serve` is the same command.
import { serverMain } from '../server/cli.js';

/** Serves until SIGINT/SIGTERM (or runs the benchmark) and resolves with the exit code. */
export async function main(argv: string[]): Promise<number | undefined> {
  return serverMain(argv, 'wf_server');
}

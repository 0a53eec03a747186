// wf web [--port P] [--host H] [--models DIR] [--no-isolation]: serves the browser app (dist/web/,
// made by `npm run build`) and the GGUF files of DIR under /models/, cross-origin isolated. The page
// lists DIR's .gguf files and the built-in demo model (model-listing.ts) to open in one click.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { defaultAppDir, ISOLATION_HEADERS, startWebServer } from '../web-server.js';
import { modelRoutes } from '../model-listing.js';
import { DEMO_MODEL_FILE } from '../../node/demo-model.js';

const SPECS: OptionSpec[] = [
  { name: 'port', type: 'number', default: 8080, description: 'port (0: any free one)' },
  { name: 'host', type: 'string', default: '127.0.0.1', description: 'address to listen on' },
  { name: 'models', type: 'string', description: 'folder whose files are served at /models/ (open /?model=/models/FILE.gguf)' },
  { name: 'no-isolation', type: 'boolean', description: 'leave out the COOP/COEP headers (the page then runs one thread)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.options.help) {
    console.log(helpText('usage: wf web [--port 8080] [--host 127.0.0.1] [--models DIR] [--no-isolation]', SPECS));
    return 0;
  }
  if (args.positionals.length) throw new CliError(`unexpected argument '${args.positionals[0]}'`);
  const port = args.options.port as number;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port must be 0..65535, got ${port}`);
  const app = defaultAppDir();
  if (!existsSync(join(app, 'index.html'))) throw new CliError(`the web app is not built (${app}index.html is missing): run npm run build`);
  const models = args.options.models as string | undefined;
  if (models !== undefined && !existsSync(models)) throw new CliError(`--models ${models}: no such folder`);
  const isolate = !args.options['no-isolation'];
  const listing = modelRoutes(models, DEMO_MODEL_FILE, isolate ? ISOLATION_HEADERS : {});
  const srv = await startWebServer({ port, host: args.options.host as string, models, isolate, ...listing });
  console.log(`wf web: the browser app is at ${srv.url} (the built-in demo model${models ? ` and the .gguf files of ${models}` : ''} are listed on the page and at ${srv.url}models/)`);
  console.log(args.options['no-isolation'] ? 'not cross-origin isolated: the page runs one thread' : 'cross-origin isolated (COOP/COEP): the page runs its kernels on Web Workers');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}

// wf tokenize [-m FILE] [--no-bos] [--parse-special] [--pieces] TEXT  ->  {"tokens":[...], "pieces"?: [...]}
import { helpText, parseArgs, CliError, type OptionSpec } from '../args.js';
import { modelOrDemo } from '../common.js';
import { openGGUF } from '../../node/model-file.js';
import { Tokenizer } from '../../tokenizer/tokenizer.js';
import { displayPiece } from '../../tokenizer/piece.js';

const SPECS: OptionSpec[] = [
  { name: 'model', short: 'm', type: 'string', description: 'GGUF model file (only its tokenizer is read)' },
  { name: 'no-bos', type: 'boolean', description: 'do not add BOS even if the file says add_bos_token' },
  { name: 'bos', type: 'boolean', description: 'add BOS even if the file does not' },
  { name: 'parse-special', type: 'boolean', description: 'turn special-token strings such as <|eot_id|> into their ids' },
  { name: 'pieces', type: 'boolean', description: 'also print each token\'s text' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

export async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPECS);
  if (args.options.help) {
    console.log(helpText('usage: wf tokenize [-m FILE.gguf] [--no-bos] [--parse-special] [--pieces] TEXT   (no -m: the built-in demo model)', SPECS));
    return 0;
  }
  const path = modelOrDemo(args, 'tokenize');
  if (args.positionals.length === 0) throw new CliError('missing TEXT to tokenize');
  const text = args.positionals.join(' ');
  const { file, close } = await openGGUF(path);
  try {
    const tok = Tokenizer.fromGGUF(file);
    const addBos = args.options['no-bos'] ? false : args.options.bos ? true : undefined;
    const tokens = tok.encode(text, { addBos, parseSpecial: !!args.options['parse-special'] });
    const out: Record<string, unknown> = { tokens };
    // the text of each token (its bytes where they are not whole UTF-8), as /tokenize's with_pieces
    if (args.options.pieces) out.pieces = tokens.map((t) => displayPiece(tok, t));
    console.log(JSON.stringify(out));
    return 0;
  } finally {
    await close();
  }
}

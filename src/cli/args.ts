// A small option parser for the CLI: --name value, --name=value, -x value, boolean flags,
// repeated options; unknown options are an error that names them.

export class CliError extends Error {
  override name = 'CliError';
}

export interface OptionSpec {
  /** long name without dashes */
  name: string;
  short?: string;
  type: 'string' | 'number' | 'boolean' | 'list';
  description?: string;
  default?: string | number | boolean;
}

export interface ParsedArgs {
  options: Record<string, string | number | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseArgs(argv: string[], specs: OptionSpec[]): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const options: ParsedArgs['options'] = {};
  for (const s of specs) if (s.default !== undefined) options[s.name] = s.default;
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
      spec = byLong.get(name) ?? byLong.get(name.replace(/_/g, '-'));
      if (!spec) throw new CliError(`unknown option '--${name}'`);
    } else if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      spec = byShort.get(a.slice(1));
      if (!spec) throw new CliError(`unknown option '${a}'`);
    } else {
      positionals.push(a);
      continue;
    }
    if (spec.type === 'boolean') {
      options[spec.name] = inline === undefined ? true : !/^(0|false|no)$/i.test(inline);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new CliError(`option '--${spec.name}' needs a value`);
    if (spec.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new CliError(`option '--${spec.name}' needs a number, got '${value}'`);
      options[spec.name] = n;
    } else if (spec.type === 'list') {
      const prev = (options[spec.name] as string[] | undefined) ?? [];
      options[spec.name] = [...prev, value];
    } else {
      options[spec.name] = value;
    }
  }
  return { options, positionals };
}

export function helpText(usage: string, specs: OptionSpec[]): string {
  const lines = [usage, '', 'options:'];
  for (const s of specs) {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'boolean' ? '' : ' ' + s.type.toUpperCase()}`;
    lines.push(`  ${flag.padEnd(30)} ${s.description ?? ''}${s.default !== undefined ? ` (default ${s.default})` : ''}`);
  }
  return lines.join('\n');
}

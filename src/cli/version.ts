// The package's version (package.json), for `wf --version`.
import { readFileSync } from 'node:fs';

/** package.json's version, found from src/cli (run from source) or dist/src/cli (built). */
export function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'wrinklefree' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next place
    }
  }
  return 'unknown';
}

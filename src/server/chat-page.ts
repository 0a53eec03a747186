// Finds the chat page (src/web/chat.html) at run time. The compiled server lives in
// dist/src/server/ and tsc does not copy HTML, so the page is looked up next to the module first
// (../web/chat.html: the source tree under tsx, or a build that copies it), then in the source tree
// seen from dist (../../../src/web/chat.html).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CANDIDATES = ['../web/chat.html', '../../../src/web/chat.html'];

/** The page's HTML, or null when it cannot be found (the server then answers / with a short note). */
export function loadChatPage(): string | null {
  for (const rel of CANDIDATES) {
    try {
      return readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'utf8');
    } catch {
      // try the next place
    }
  }
  return null;
}

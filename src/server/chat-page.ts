// Finds the chat page at run time: dist/web/chat.html, which `npm run build` makes from
// src/web/chat.html and the shared chat UI (src/web/chat/). It is looked up from the compiled
// module (dist/src/server/ -> dist/web/) and from the source tree under tsx (src/server/ -> dist/web/).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CANDIDATES = ['../../web/chat.html', '../../dist/web/chat.html'];

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

// Entry of wf_server's chat page: the shared chat UI on the HTTP backend. The build bundles it and
// inlines it into dist/web/chat.html (from src/web/chat.html), which the server answers at GET /.
import { HttpChatBackend } from './http-backend.js';
import { mountChat } from './ui.js';

const root = document.getElementById('chat')!;
const chat = mountChat(root, new HttpChatBackend(() => (document.getElementById('apiKey') as HTMLInputElement | null)?.value ?? ''), {
  apiKey: true,
  demoNote:
    "This server runs the built-in demo model: a 2.3-million-parameter BitNet b1.58 that WrinkleFree trained on the King James Bible, fortune cookies and The Devil's Dictionary (Debian packages bible-kjv-text, fortunes, dict-devil). It writes English in their style; it does not know things or answer questions. Start the server with -m model.gguf for a real model.",
});
void chat.refresh();

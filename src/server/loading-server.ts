// The port, held while the model loads: a replica that is starting answers instead of refusing
// connections. /health (readiness) says 503 {status: "loading"}, as llama-server's says 503 while it
// loads; /livez (liveness) says 200, the process being alive; every other request gets 503 with
// Retry-After. Holding the port first also makes a port in use fail at once, not after a minute of
// loading a large model. The real server takes the port over once the model is loaded (wf_server
// closes this one just before it listens: connections in that gap of a few milliseconds are refused).
import { createServer, type Server } from 'node:http';
import { ApiError } from './errors.js';

export interface LoadingServer {
  close(): Promise<void>;
}

function send(res: import('node:http').ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), Connection: 'close', ...headers });
  res.end(text);
}

/** Listens on host:port until close(); rejects with a clear message when the port cannot be had. */
export function listenWhileLoading(host: string, port: number): Promise<LoadingServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    if (path === '/livez') return send(res, 200, { status: 'alive', draining: false, loading: true });
    if (path === '/health' || path === '/v1/health') return send(res, 503, { status: 'loading' });
    const err = new ApiError(503, 'the model is still loading; retry shortly', 'server_error', null, 'model_loading');
    send(res, 503, err.body(), { 'Retry-After': '5' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') reject(new Error(`port ${port} on ${host} is already in use`));
      else if (e.code === 'EACCES') reject(new Error(`no permission to listen on ${host}:${port}`));
      else reject(e);
    });
    server.listen(port, host, () =>
      resolve({
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      }),
    );
  });
}

import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { formatToken } from 'hush-vault-sdk/token-format';
import { closedPort as freePort } from '../helpers/http.js';

/** A well-formed token (valid checksum) that no server knows. */
export function unknownToken(): string {
  return formatToken((n) => randomBytes(n));
}

export type Scripted = { status: number; headers?: Record<string, string>; body?: unknown } | 'proxy' | 'hang';

export interface ScriptServer {
  url: string;
  /** Requests received so far (method + path). */
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  /** Decides each response; the default proxies everything to `target`. */
  script: (n: number, req: IncomingMessage) => Scripted;
  close(): Promise<void>;
}

/**
 * A real local HTTP server on port 0 that answers from a script (fixed
 * statuses, hanging, or proxying to a real Hush server), counting requests.
 * Used to drive retry and timeout mechanics that a healthy server cannot.
 */
export async function scriptServer(target?: string): Promise<ScriptServer> {
  const hanging = new Set<ServerResponse>();
  const state: ScriptServer = {
    url: '',
    requests: [],
    script: () => (target ? 'proxy' : { status: 200, body: {} }),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((req, res) => {
    const n = state.requests.length;
    state.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const action = state.script(n, req);
    if (action === 'hang') {
      hanging.add(res);
      req.resume();
      return;
    }
    if (action === 'proxy') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers = { ...req.headers };
        delete headers.host;
        const up = httpRequest(target + (req.url ?? ''), { method: req.method, headers }, (ures) => {
          res.writeHead(ures.statusCode ?? 502, ures.headers);
          ures.pipe(res);
        });
        up.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        up.end(Buffer.concat(chunks));
      });
      return;
    }
    req.resume();
    const body = action.body === undefined ? '' : typeof action.body === 'string' ? action.body : JSON.stringify(action.body);
    res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** The URL of a port nothing listens on. */
export async function closedPort(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

export const errorBody = (code: string, message = code) => ({ error: { code, message, requestId: 'req_test' } });

/**
 * A real webhook receiver on 127.0.0.1: records every request, checks the
 * Hush-Signature header as docs/webhooks.md tells receivers to, and answers
 * what the test says (200, an error status, a redirect, or nothing at all).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: any;
  /** The signature verified with the secret the receiver was given (null: no secret set). */
  signed: boolean | null;
}

export type Behaviour = 'ok' | 'fail' | 'redirect' | 'hang';

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  secret: string | null;
  behaviour: Behaviour;
  /** Requests left hanging (behaviour 'hang'), answered or dropped by the test. */
  hanging: ServerResponse[];
  close(): Promise<void>;
}

/** Checks `t=…,v1=…` against HMAC-SHA256(secret, t + "." + body), in constant time. */
export function verifySignature(secret: string, header: string | undefined, body: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!m) return false;
  const expected = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2], 'hex'));
}

export async function startReceiver(opts: { port?: number; secret?: string | null; behaviour?: Behaviour } = {}): Promise<Receiver> {
  const r: Receiver = {
    url: '',
    port: 0,
    received: [],
    secret: opts.secret ?? null,
    behaviour: opts.behaviour ?? 'ok',
    hanging: [],
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        /* recorded as text */
      }
      const signed = r.secret === null ? null : verifySignature(r.secret, req.headers['hush-signature'] as string | undefined, body);
      r.received.push({ path: req.url ?? '', headers: req.headers, body, json, signed });
      if (r.behaviour === 'hang') {
        r.hanging.push(res);
        return;
      }
      if (r.behaviour === 'redirect') {
        res.writeHead(302, { location: `${r.url}/elsewhere` }).end();
        return;
      }
      if (r.behaviour === 'fail') {
        res.writeHead(503).end('down');
        return;
      }
      res.writeHead(signed === false ? 400 : 200).end('ok');
    });
  });
  await new Promise<void>((res) => server.listen(opts.port ?? 0, '127.0.0.1', () => res()));
  r.port = (server.address() as { port: number }).port;
  r.url = `http://127.0.0.1:${r.port}`;
  r.close = async () => {
    for (const h of r.hanging) h.destroy();
    server.closeAllConnections();
    await new Promise<void>((res) => server.close(() => res()));
  };
  return r;
}

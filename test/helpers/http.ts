/** The one JSON-over-fetch wrapper of the tests: every helper that talks to a server's API goes through it. */
import { createServer } from 'node:net';

export interface JsonResponse {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export interface JsonRequestOptions {
  token?: string | null;
  /** Sent as JSON; a string is sent as it is (for malformed bodies). */
  body?: unknown;
  /** Bytes or text sent as they are, with content-type application/json unless headers name one. */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  /** Aborts a request that hangs (default 20 s). */
  timeoutMs?: number;
}

/** One request; the body is parsed as JSON when it is JSON, else left as text. Never hangs. */
export async function jsonRequest(base: string, method: string, path: string, opts: JsonRequestOptions = {}): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Uint8Array | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
    headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

export type Api = (
  method: string,
  path: string,
  body?: unknown,
  token?: string | null,
  headers?: Record<string, string>,
) => Promise<JsonResponse>;

/** Requests against the server at `url`, with `token` unless another (or null) is given. */
export function apiFor(url: string, token: string): Api {
  return (method, path, body, tok = token, headers = {}) => jsonRequest(url, method, path, { token: tok, body, headers });
}

/** A request that must succeed: its parsed body, or an error naming the request and status. */
export async function apiOk(url: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const r = await jsonRequest(url, method, path, { token, body });
  if (r.status >= 300) throw new Error(`${method} ${path} -> ${r.status} ${r.text.slice(0, 200)}`);
  return r.body;
}

/** A 127.0.0.1 port that nothing listens on (it was bound, then released): connections to it are refused. */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

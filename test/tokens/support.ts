import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { TestServer } from '../helpers/server.js';
import { seed as seedLayout, type Layout } from '../helpers/seed.js';
import { remember } from '../helpers/leaks.js';

export { logLeakCheck, remember } from '../helpers/leaks.js';

export interface Minted {
  token: string;
  id: string;
  body: any;
}

/** Creates a token through the API (as `parent`, root by default) and remembers its string. */
export async function mint(
  s: TestServer,
  scopes: string[],
  opts: { name?: string; ttl?: string; cidrs?: string[]; parent?: string } = {},
): Promise<Minted> {
  const body: Record<string, unknown> = { name: opts.name ?? scopes.join(' '), scopes };
  if (opts.ttl) body.ttl = opts.ttl;
  if (opts.cidrs) body.cidrs = opts.cidrs;
  const r = await s.api('POST', '/v1/tokens', body, opts.parent ?? s.rootToken);
  assert.equal(r.status, 201, `creating ${scopes.join(',')}: ${JSON.stringify(r.body)}`);
  remember(r.body.token);
  return { token: r.body.token, id: r.body.id, body: r.body };
}

/** Creates project/env/secret fixtures through the API as root; idempotent. */
export async function seed(s: TestServer, layout: Layout): Promise<void> {
  for (const envs of Object.values(layout)) for (const secrets of Object.values(envs)) for (const v of Object.values(secrets)) remember(v);
  await seedLayout(s.api, layout);
}

/** A recognisable secret value that the leak check can find anywhere. */
export function secretValue(label: string): string {
  return remember(`sv-${label}-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`);
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

/**
 * One HTTP request from a chosen loopback source address. Linux routes all
 * of 127.0.0.0/8 to lo, so `localAddress: '127.0.0.2'` is "another client IP"
 * on one machine.
 */
export function rawRequest(
  url: string,
  opts: {
    method?: string;
    path: string;
    token?: string | null;
    authorization?: string;
    body?: unknown;
    localAddress?: string;
    headers?: Record<string, string>;
  },
): Promise<RawResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers,
        localAddress: opts.localAddress,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import { capturedLogs, type TestServer } from '../helpers/server.js';

/**
 * Every token string, Authorization value and secret value a test in this
 * process has handled. The leak check at the end of each file looks for
 * each of them in every captured log line.
 */
export const sensitive = new Set<string>();

export function remember<T extends string | null | undefined>(value: T): T {
  if (value) sensitive.add(value);
  return value;
}

export interface Minted { token: string; id: string; body: any }

/** Creates a token through the API (as `parent`, root by default) and remembers its string. */
export async function mint(s: TestServer, scopes: string[], opts: { name?: string; ttl?: string; cidrs?: string[]; parent?: string } = {}): Promise<Minted> {
  const body: Record<string, unknown> = { name: opts.name ?? scopes.join(' '), scopes };
  if (opts.ttl) body.ttl = opts.ttl;
  if (opts.cidrs) body.cidrs = opts.cidrs;
  const r = await s.api('POST', '/v1/tokens', body, opts.parent ?? s.rootToken);
  assert.equal(r.status, 201, `creating ${scopes.join(',')}: ${JSON.stringify(r.body)}`);
  remember(r.body.token);
  return { token: r.body.token, id: r.body.id, body: r.body };
}

/** Creates project/env/secret fixtures through the API as root; idempotent. */
export async function seed(s: TestServer, layout: Record<string, Record<string, Record<string, string>>>): Promise<void> {
  for (const [p, envs] of Object.entries(layout)) {
    const rp = await s.api('POST', '/v1/projects', { name: p });
    assert.ok(rp.status === 201 || rp.status === 409, `project ${p}: ${rp.status}`);
    for (const [e, secrets] of Object.entries(envs)) {
      const re = await s.api('POST', `/v1/projects/${p}/envs`, { name: e });
      assert.ok(re.status === 201 || re.status === 409, `env ${p}/${e}: ${re.status}`);
      if (Object.keys(secrets).length === 0) continue;
      for (const v of Object.values(secrets)) remember(v);
      const rs = await s.api('PATCH', `/v1/projects/${p}/envs/${e}/secrets`, { set: secrets });
      assert.equal(rs.status, 200, `secrets ${p}/${e}: ${JSON.stringify(rs.body)}`);
    }
  }
}

/** A recognisable secret value that the leak check can find anywhere. */
export function secretValue(label: string): string {
  return remember(`sv-${label}-${Math.random().toString(36).slice(2)}-${Date.now().toString(36)}`);
}

export interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; text: string; body: any }

/**
 * One HTTP request from a chosen loopback source address. Linux routes all
 * of 127.0.0.0/8 to lo, so `localAddress: '127.0.0.2'` is "another client IP"
 * on one machine.
 */
export function rawRequest(url: string, opts: { method?: string; path: string; token?: string | null; authorization?: string; body?: unknown; localAddress?: string; headers?: Record<string, string> }): Promise<RawResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers, localAddress: opts.localAddress, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Registers, as the file's last test, the check that no remembered token,
 * Authorization value or secret value, and nothing token-shaped at all,
 * appears in any line the file's servers logged.
 */
export function logLeakCheck(): void {
  test('no token, Authorization value or secret value appears in any captured log line', () => {
    assert.ok(capturedLogs.length > 0, 'the servers logged nothing, so the check would prove nothing');
    assert.ok(sensitive.size > 0, 'no sensitive values were remembered');
    const offenders: string[] = [];
    for (const line of capturedLogs) {
      for (const v of sensitive) if (line.includes(v)) offenders.push(`value ${v.slice(0, 8)}… in ${line.slice(0, 200)}`);
      if (/hush_[0-9A-Za-z]{20,}/.test(line)) offenders.push(`token-shaped string in ${line.slice(0, 200)}`);
      if (/bearer\s/i.test(line)) offenders.push(`Authorization value in ${line.slice(0, 200)}`);
    }
    assert.deepEqual(offenders, []);
  });
}

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { tempDir, type TestServer } from '../helpers/server.js';

/** An event as GET /v1/audit returns it. */
export interface Ev {
  seq: number; ts: string; actor: { id: string; name: string }; action: string; project: string | null; env: string | null;
  target: Record<string, any>; outcome: string; ip: string | null; requestId: string | null; detail: Record<string, any>; hash: string;
}

/** Every event matching `query` (a query string without cursor/limit), following the cursor. */
export async function allEvents(s: Pick<TestServer, 'api'>, query = ''): Promise<Ev[]> {
  const out: Ev[] = [];
  let cursor: string | null = null;
  for (;;) {
    const qs = [query, 'limit=1000', cursor ? `cursor=${cursor}` : ''].filter(Boolean).join('&');
    const r = await s.api('GET', `/v1/audit?${qs}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(...r.body.events);
    cursor = r.body.nextCursor;
    if (!cursor) return out;
  }
}

export async function verify(s: Pick<TestServer, 'api'>, query = ''): Promise<{ ok: boolean; checked: number; firstBadSeq: number | null; reason: string | null; headSeq: number; headHash: string | null }> {
  const r = await s.api('GET', `/v1/audit/verify${query ? `?${query}` : ''}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

export async function makeEnv(s: Pick<TestServer, 'api'>, project: string, ...envs: string[]): Promise<void> {
  const p = await s.api('POST', '/v1/projects', { name: project });
  assert.ok(p.status === 201 || p.status === 409, JSON.stringify(p.body));
  for (const e of envs) {
    const r = await s.api('POST', `/v1/projects/${project}/envs`, { name: e });
    assert.ok(r.status === 201 || r.status === 409, JSON.stringify(r.body));
  }
}

export async function createToken(s: Pick<TestServer, 'api'>, name: string, scopes: string[]): Promise<{ token: string; id: string }> {
  const r = await s.api('POST', '/v1/tokens', { name, scopes, ttl: '1h' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { token: r.body.token, id: r.body.id };
}

/** A knex handle on a data dir's SQLite file, beside (or instead of) the server. */
export function openSqlite(dataDir: string): Knex {
  return openDb({ url: `sqlite:${join(dataDir, 'hush.db')}` });
}

/** A copy of a (stopped) server's data dir, so each tamper case starts from the same intact log. */
export function copyDataDir(dataDir: string): string {
  const dir = join(tempDir('hush-audit-copy-'), 'data');
  cpSync(dataDir, dir, { recursive: true });
  return dir;
}

export function assertContiguous(events: { seq: number }[]): void {
  const seqs = events.map((e) => e.seq);
  assert.equal(new Set(seqs).size, seqs.length, 'duplicate seq');
  seqs.forEach((s, i) => { if (s !== i + 1) assert.fail(`seq ${i + 1} expected at position ${i}, found ${s}`); });
}

export const HUSH_BIN = new URL('../../cli/main.js', import.meta.url).pathname;

/** `hush server` as a separate process; resolves once it listens. */
export async function spawnHushServer(args: string[]): Promise<{ child: ChildProcess; url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [HUSH_BIN, 'server', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d) => {
      stderr += d;
      const m = /listening on (\S+)/.exec(stderr);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`server exited with ${code}: ${stderr}`)); });
  });
  return {
    child, url,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

/** fetch against any server URL, shaped like TestServer.api. */
export function apiFor(url: string, token: string): TestServer['api'] {
  return async (method, path, body, tok = token, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (tok) h.authorization = `Bearer ${tok}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(url + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}

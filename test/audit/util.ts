import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { tempDir, type TestServer } from '../helpers/server.js';
import { seedEnvs } from '../helpers/seed.js';

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

export const makeEnv = (s: Pick<TestServer, 'api'>, project: string, ...envs: string[]): Promise<void> => seedEnvs(s.api, project, ...envs);

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

export { apiFor } from '../helpers/http.js';

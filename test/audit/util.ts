import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import type { Knex } from 'knex';
import { openDb } from '../../vault/store/db.js';
import { tempDir, type TestServer } from '../helpers/server.js';
import { seedEnvs } from '../helpers/seed.js';

/** An event as GET /v1/audit returns it. */
export interface Ev {
  seq: number;
  ts: string;
  actor: { id: string; name: string };
  action: string;
  project: string | null;
  env: string | null;
  target: Record<string, any>;
  outcome: string;
  ip: string | null;
  requestId: string | null;
  detail: Record<string, any>;
  hash: string;
  stream: number;
  streamSeq: number;
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

export async function verify(
  s: Pick<TestServer, 'api'>,
  query = '',
): Promise<{ ok: boolean; checked: number; firstBadSeq: number | null; reason: string | null; headSeq: number; headHash: string | null }> {
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

/**
 * No duplicate seq, seqs ascending, and within each stream (one per writing
 * process) the stream seqs run 1..n with no gap. Global seqs may have gaps
 * on PostgreSQL (a sequence: a batch that rolled back used its numbers).
 */
export function assertContiguous(events: { seq: number; stream?: number; streamSeq?: number }[]): void {
  const seqs = events.map((e) => e.seq);
  assert.equal(new Set(seqs).size, seqs.length, 'duplicate seq');
  seqs.forEach((s, i) => {
    if (i > 0 && s <= seqs[i - 1]) assert.fail(`seq ${s} at position ${i} does not follow ${seqs[i - 1]}`);
  });
  const next = new Map<number, number>();
  for (const e of events) {
    const stream = e.stream ?? 0;
    const want = next.get(stream) ?? 1;
    if (e.streamSeq !== want) assert.fail(`stream ${stream}: #${want} expected at event ${e.seq}, found #${e.streamSeq}`);
    next.set(stream, want + 1);
  }
}

/** The highest seq of a list of events (0 when empty). */
export const maxSeq = (events: { seq: number }[]): number => events.reduce((m, e) => Math.max(m, e.seq), 0);

/**
 * Runs `fn` (which tampers with the live database), then puts every audit
 * table back as it was: events, the stream registry and the checkpoints.
 */
export async function withAuditRestored<T>(db: Knex, fn: () => Promise<T>): Promise<T> {
  const tables = [
    ['audit_events', 'seq'],
    ['audit_streams', 'id'],
    ['audit_checkpoints', 'id'],
  ] as const;
  const saved = await Promise.all(tables.map(([t, key]) => db(t).orderBy(key)));
  try {
    return await fn();
  } finally {
    await db.transaction(async (tx) => {
      for (const [i, [t]] of tables.entries()) {
        await tx(t).delete();
        for (let j = 0; j < saved[i].length; j += 50) await tx(t).insert(saved[i].slice(j, j + 50));
      }
    });
  }
}

export { apiFor } from '../helpers/http.js';

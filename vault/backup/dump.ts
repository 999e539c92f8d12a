import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { secretAd } from '../crypto/keyring.js';
import type { Container } from '../container.js';
import { openDb, isPostgres, type Db, type Tx } from '../store/db.js';
import { databaseUrl } from '../vault.js';

/**
 * Logical backup format (NDJSON, one JSON object per line):
 *
 *   {"type":"hush-backup","format":1,"createdAt",...,"counts":{...},"bodySha256":"..."}   header
 *   {"t":"key","purpose":"token-pepper"|"audit-mac","version",key}                       raw keys (see keyring)
 *   {"t":"project"} {"t":"env"} {"t":"secret"} {"t":"version", value}                    data, by name
 *   {"t":"token"} ... {"t":"audit"} ... {"t":"audit_head"}
 *
 * The body is independent of the storage engine and of row ids (ordered by
 * names and sequence numbers), so a dump of a restored vault hashes the same
 * as the dump it came from. Values are plaintext here: the whole stream only
 * ever leaves the process inside OpenPGP encryption.
 */
export const BACKUP_FORMAT = 1;

export interface BackupCounts { projects: number; envs: number; secrets: number; versions: number; tokens: number; audit: number }
export interface BackupHeader { type: 'hush-backup'; format: number; createdAt: string; vaultId: string; source: string; counts: BackupCounts; bodySha256: string }

type Line = Record<string, unknown>;
type KeysForDump = Pick<Container['keys'], 'cipher' | 'exportForBackup'>;

const emptyCounts = (): BackupCounts => ({ projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 });
const b64 = (b: Buffer | null) => (b === null ? null : Buffer.from(b).toString('base64'));

/**
 * Text columns are ordered and compared byte-wise on both engines. SQLite's
 * default (BINARY) already is; PostgreSQL's default collation follows the
 * database locale (en_US orders `a_b` after `ab`), which would make the same
 * vault dump in a different order, and so hash differently, per engine.
 */
function textOrder(tx: Tx): string {
  return isPostgres(tx) ? '?? collate "C"' : '??';
}
function textAfter(tx: Tx): string {
  return isPostgres(tx) ? '?? collate "C" > ?' : '?? > ?';
}

const PAGE = 500;

/**
 * Every body line in canonical order, read through `tx` (a consistent
 * snapshot). Memory stays bounded: secrets and versions are read in pages
 * (keyset pagination), never a whole environment at once.
 */
export async function* bodyLines(tx: Tx, deps: { keys: KeysForDump }): AsyncGenerator<Line> {
  for (const purpose of ['token-pepper', 'audit-mac'] as const) yield { t: 'key', purpose, version: 1, key: await deps.keys.exportForBackup(purpose, tx) };
  const projects: Record<string, any>[] = await tx('projects').select('id', 'name', 'created_at').orderByRaw(textOrder(tx), ['name']);
  for (const p of projects) {
    yield { t: 'project', name: p.name, createdAt: Number(p.created_at) };
    const envs: Record<string, any>[] = await tx('environments').where({ project_id: p.id }).select('id', 'name', 'revision', 'created_at').orderByRaw(textOrder(tx), ['name']);
    for (const e of envs) {
      yield { t: 'env', project: p.name, name: e.name, revision: Number(e.revision), createdAt: Number(e.created_at) };
      const versions = versionPages(tx, e.id);
      let pendingVersion: IteratorResult<VersionDbRow> = await versions.next();
      for await (const s of secretPages(tx, e.id)) {
        yield { t: 'secret', project: p.name, env: e.name, name: s.name, version: Number(s.version), deleted: !!s.deleted, createdAt: Number(s.created_at), updatedAt: Number(s.updated_at) };
        // Both cursors run in (name, version) order, so this secret's versions are next.
        for (; !pendingVersion.done && pendingVersion.value.sname === s.name; pendingVersion = await versions.next()) {
          const v = pendingVersion.value;
          let value: string | null = null;
          if (!v.deleted) {
            const c = await deps.keys.cipher(p.id, v.dek_version, tx);
            value = c.decrypt(Buffer.from(v.nonce), Buffer.from(v.ciphertext), secretAd(p.id, e.id, s.name, Number(v.version)), `${p.name}/${e.name}/${s.name} v${v.version}`);
          }
          yield { t: 'version', project: p.name, env: e.name, name: s.name, version: Number(v.version), deleted: !!v.deleted, value, createdBy: v.created_by, createdAt: Number(v.created_at) };
        }
      }
      if (!pendingVersion.done) throw new Error(`backup dump: version rows of ${p.name}/${e.name}/${pendingVersion.value.sname} do not follow their secret`);
      await versions.return(undefined);
    }
  }
  let afterId: string | null = null;
  for (;;) {
    const q = tx('tokens').limit(PAGE);
    if (afterId !== null) q.whereRaw(textAfter(tx), ['id', afterId]);
    const page: Record<string, any>[] = await q.orderByRaw(textOrder(tx), ['id']);
    if (page.length === 0) break;
    for (const t of page) {
      yield {
        t: 'token', id: t.id, name: t.name, description: t.description, hash: b64(t.hash), scopes: JSON.parse(t.scopes), parentId: t.parent_id ?? null,
        cidrs: JSON.parse(t.cidrs), createdAt: Number(t.created_at), expiresAt: t.expires_at == null ? null : Number(t.expires_at),
        revokedAt: t.revoked_at == null ? null : Number(t.revoked_at), lastUsedAt: t.last_used_at == null ? null : Number(t.last_used_at),
      };
    }
    afterId = page[page.length - 1].id;
  }
  let seq = 0;
  for (;;) {
    const rows = await tx('audit_events').where('seq', '>', seq).orderBy('seq').limit(2000);
    if (rows.length === 0) break;
    for (const r of rows) {
      yield {
        t: 'audit', seq: Number(r.seq), ts: Number(r.ts), actorId: r.actor_id, actorName: r.actor_name, action: r.action, project: r.project ?? null, env: r.env ?? null,
        target: JSON.parse(r.target), outcome: r.outcome, ip: r.ip ?? null, requestId: r.request_id ?? null, detail: JSON.parse(r.detail),
        prevHash: b64(r.prev_hash), hash: b64(r.hash),
      };
    }
    seq = Number(rows[rows.length - 1].seq);
  }
  // A vault always has a head row (init writes it); an empty log has seq 0 and the genesis hash.
  const head = await tx('audit_head').where({ id: 1 }).first();
  yield { t: 'audit_head', seq: Number(head?.seq ?? 0), hash: b64(head ? Buffer.from(head.hash) : Buffer.alloc(32)) };
}

interface VersionDbRow { sname: string; version: number; nonce: Buffer; ciphertext: Buffer; dek_version: number; deleted: unknown; created_by: string; created_at: unknown }

async function* secretPages(tx: Tx, envId: number): AsyncGenerator<Record<string, any>> {
  let after: string | null = null;
  for (;;) {
    const q = tx('secrets').where({ env_id: envId }).select('name', 'version', 'deleted', 'created_at', 'updated_at').limit(PAGE);
    if (after !== null) q.whereRaw(textAfter(tx), ['name', after]);
    const page: Record<string, any>[] = await q.orderByRaw(textOrder(tx), ['name']);
    yield* page;
    if (page.length < PAGE) return;
    after = page[page.length - 1].name;
  }
}

/** Every version of an environment in (secret name, version) order, a page at a time. */
async function* versionPages(tx: Tx, envId: number): AsyncGenerator<VersionDbRow> {
  let after: { name: string; version: number } | null = null;
  const pg = isPostgres(tx);
  const c = pg ? ' collate "C"' : '';
  for (;;) {
    const q = tx('secret_versions as v').join('secrets as s', 's.id', 'v.secret_id').where('s.env_id', envId)
      .select({ sname: 's.name' }, 'v.version', 'v.nonce', 'v.ciphertext', 'v.dek_version', 'v.deleted', 'v.created_by', 'v.created_at')
      .orderByRaw(`s.name${c}, v.version`).limit(PAGE * 2);
    if (after) {
      const a = after;
      q.where((w) => w.whereRaw(`s.name${c} > ?`, [a.name]).orWhere((w2) => w2.where('s.name', a.name).andWhere('v.version', '>', a.version)));
    }
    const page: VersionDbRow[] = await q;
    yield* page;
    if (page.length < PAGE * 2) return;
    const last = page[page.length - 1];
    after = { name: last.sname, version: Number(last.version) };
  }
}

export function countLine(c: BackupCounts, l: Line): void {
  switch (l.t) {
    case 'project': c.projects++; break;
    case 'env': c.envs++; break;
    case 'secret': c.secrets++; break;
    case 'version': c.versions++; break;
    case 'token': c.tokens++; break;
    case 'audit': c.audit++; break;
  }
}

/** Hashes and counts a body without keeping it. */
export async function digestBody(lines: AsyncIterable<Line>): Promise<{ sha256: string; counts: BackupCounts }> {
  const h = createHash('sha256');
  const counts = emptyCounts();
  for await (const l of lines) {
    h.update(JSON.stringify(l) + '\n');
    countLine(counts, l);
  }
  return { sha256: h.digest('hex'), counts };
}

/**
 * A read snapshot for a backup. SQLite: a second connection in its own read
 * transaction (WAL lets it see one consistent state while the server keeps
 * writing). PostgreSQL: a REPEATABLE READ, read-only transaction.
 */
export async function openSnapshot(c: Pick<Container, 'db' | 'config'>): Promise<{ tx: Tx; release: () => Promise<void> }> {
  if (isPostgres(c.db)) {
    const tx = await c.db.transaction({ isolationLevel: 'repeatable read', readOnly: true } as never) as unknown as Tx;
    return { tx, release: async () => { await (tx as unknown as { commit: () => Promise<void> }).commit(); } };
  }
  const db: Db = openDb({ url: databaseUrl(c.config), sqliteSynchronous: c.config.sqliteSynchronous });
  const tx = await db.transaction();
  await tx.raw('select count(*) from audit_head'); // starts the read snapshot now
  return { tx, release: async () => { await tx.commit().catch(() => undefined); await db.destroy(); } };
}

/**
 * The whole backup as a stream of NDJSON text: header (with the body's
 * SHA-256, so a first pass over the snapshot hashes it), then the body.
 */
export async function dumpStream(c: Pick<Container, 'db' | 'config' | 'keys' | 'storage' | 'stores'>): Promise<{ stream: Readable; header: BackupHeader }> {
  const snap = await openSnapshot(c);
  let released: Promise<void> | null = null;
  const release = () => (released ??= snap.release().catch(() => undefined));
  try {
    const deps = { keys: c.keys };
    const { sha256, counts } = await digestBody(bodyLines(snap.tx, deps));
    const vaultId = (await c.stores.meta.get('vault_id', snap.tx)) ?? 'unknown';
    const header: BackupHeader = { type: 'hush-backup', format: BACKUP_FORMAT, createdAt: new Date().toISOString(), vaultId, source: c.storage, counts, bodySha256: sha256 };
    async function* text(): AsyncGenerator<string> {
      try {
        yield JSON.stringify(header) + '\n';
        let buf = '';
        for await (const l of bodyLines(snap.tx, deps)) {
          buf += JSON.stringify(l) + '\n';
          if (buf.length > 64 * 1024) { yield buf; buf = ''; }
        }
        if (buf) yield buf;
      } finally {
        await release();
      }
    }
    const stream = Readable.from(text(), { objectMode: false });
    // Destroying a stream whose generator never started skips the generator's
    // finally block, so the snapshot is also released on close.
    stream.once('close', () => { void release(); });
    return { stream, header };
  } catch (e) {
    await release();
    throw e;
  }
}

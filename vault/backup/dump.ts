import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { secretAd } from '../crypto/keyring.js';
import type { Container } from '../container.js';
import type { BackupStore, BackupVersion } from '../store/backup-store.js';
import { readSnapshot, type Tx } from '../store/db.js';
import { BodyText } from './body-text.js';

/**
 * Logical backup format (NDJSON, one JSON object per line):
 *
 *   {"type":"hush-backup","format":2,"createdAt",...,"counts":{...},"bodySha256":"..."}   header
 *   {"t":"key","purpose":"token-pepper"|"audit-mac","version",key}                       raw keys (see keyring)
 *   {"t":"project"} {"t":"env"} {"t":"secret"} {"t":"version", value}                    data, by name
 *   {"t":"token"} ... {"t":"audit"} ... {"t":"audit_stream"} ... {"t":"audit_checkpoint"} ...
 *
 * Format 5 (this release) moves the body's SHA-256 from the header to a last
 * line, {"t":"end","bodySha256"}, so a backup is written in one pass over the
 * snapshot (the header's counts come from count queries in the same
 * snapshot, and the body must agree with them). The body lines are format 4's.
 *
 * Format 4 adds "revision" to each version line: the env
 * revision that wrote it (env history, docs/history.md; a restore of an
 * older format rebuilds revisions as the upgrade migration does), and
 * {"t":"secret_policy"} lines after the JWT roles: rotation periods,
 * expiries and generators of secrets (docs/lifecycle.md), by project, env
 * and secret name.
 * Format 3 added {"t":"jwt_role"} lines after the tokens: the
 * JWT auth roles (docs/machine-identity.md). Format 2 carries the audit streams: each event's stream and
 * place in it, the stream registry and the checkpoints (docs/audit.md).
 * Format 1 (before streams) had one chain and an {"t":"audit_head"} line;
 * restore reads both.
 *
 * The body is independent of the storage engine and of row ids (ordered by
 * names and sequence numbers), so a dump of a restored vault hashes the same
 * as the dump it came from. Values are plaintext here: the whole stream only
 * ever leaves the process inside OpenPGP encryption.
 */
export const BACKUP_FORMAT = 5;
/** Formats this release restores. */
export const READABLE_FORMATS = [1, 2, 3, 4, 5];

export interface BackupCounts {
  projects: number;
  envs: number;
  secrets: number;
  versions: number;
  tokens: number;
  audit: number;
}
/** The first line. `bodySha256`: formats 1 to 4 only (format 5 has it in its last line, BackupEnd). */
export interface BackupHeader {
  type: 'hush-backup';
  format: number;
  createdAt: string;
  vaultId: string;
  source: string;
  counts: BackupCounts;
  bodySha256?: string;
}
/** Format 5's last line: the SHA-256 of every line between the header and this one. */
export interface BackupEnd {
  t: 'end';
  bodySha256: string;
}

export type Line = Record<string, unknown>;
/** What a dump reads through: the backup store and the key service (values are decrypted with its ciphers). */
export interface DumpDeps {
  keys: Pick<Container['keys'], 'cipher' | 'exportForBackup'>;
  store: BackupStore;
}

export const emptyCounts = (): BackupCounts => ({ projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 });
const b64 = (b: Buffer | null) => (b === null ? null : Buffer.from(b).toString('base64'));

/**
 * Every body line in canonical order, read through `tx` (a consistent
 * snapshot; the database itself for a read-back). The store reads in pages
 * in byte-wise name order on both engines, so the same vault dumps the same
 * bytes on either, and memory stays bounded.
 */
/**
 * `format` 1 writes the body as the release before audit streams did (only
 * for a vault whose events are all in stream 0): a restore of a format 1
 * backup reads the restored vault back that way to compare it with the
 * backup's hash.
 */
export async function* bodyLines(tx: Tx, deps: DumpDeps, format = BACKUP_FORMAT): AsyncGenerator<Line> {
  yield* keyLines(tx, deps);
  yield* dataLines(tx, deps, format);
  yield* tailLines(tx, deps, format);
}

/** The key lines (the body's first section). */
export async function* keyLines(tx: Tx, deps: DumpDeps): AsyncGenerator<Line> {
  for (const purpose of ['token-pepper', 'audit-mac'] as const)
    yield { t: 'key', purpose, version: 1, key: await deps.keys.exportForBackup(purpose, tx) };
}

/** Projects, envs, secrets and versions, as objects (body-text.ts writes the same lines as text, faster). */
export async function* dataLines(tx: Tx, deps: DumpDeps, format = BACKUP_FORMAT): AsyncGenerator<Line> {
  const { keys, store } = deps;
  for (const p of await store.projects(tx)) {
    yield { t: 'project', name: p.name, createdAt: p.createdAt };
    for (const e of await store.envs(p.id, tx)) {
      yield { t: 'env', project: p.name, name: e.name, revision: e.revision, createdAt: e.createdAt };
      const versions = store.versions(e.id, tx);
      let pendingVersion: IteratorResult<BackupVersion> = await versions.next();
      for await (const s of store.secrets(e.id, tx)) {
        yield {
          t: 'secret',
          project: p.name,
          env: e.name,
          name: s.name,
          version: s.version,
          deleted: s.deleted,
          createdAt: s.createdAt,
          updatedAt: s.updatedAt,
        };
        // Both cursors run in (name, version) order, so this secret's versions are next.
        for (; !pendingVersion.done && pendingVersion.value.secretName === s.name; pendingVersion = await versions.next()) {
          const v = pendingVersion.value;
          let value: string | null = null;
          if (!v.deleted) {
            const c = await keys.cipher(p.id, v.dekVersion!, tx);
            value = c.decrypt(
              v.nonce!,
              v.ciphertext!,
              secretAd(p.id, e.id, s.name, v.version),
              `${p.name}/${e.name}/${s.name} v${v.version}`,
            );
          }
          const line: Line = {
            t: 'version',
            project: p.name,
            env: e.name,
            name: s.name,
            version: v.version,
            deleted: v.deleted,
            value,
            createdBy: v.createdBy,
            createdAt: v.createdAt,
          };
          if (format >= 4) line.revision = v.revision;
          yield line;
        }
      }
      if (!pendingVersion.done)
        throw new Error(`backup dump: version rows of ${p.name}/${e.name}/${pendingVersion.value.secretName} do not follow their secret`);
      await versions.return(undefined);
    }
  }
}

/** Tokens, JWT roles and the audit tables: everything after the data. */
export async function* tailLines(tx: Tx, deps: DumpDeps, format = BACKUP_FORMAT): AsyncGenerator<Line> {
  const { store } = deps;
  for await (const t of store.tokens(tx)) {
    yield {
      t: 'token',
      id: t.id,
      name: t.name,
      description: t.description,
      hash: b64(t.hash),
      scopes: t.scopes,
      parentId: t.parentId,
      cidrs: t.cidrs,
      createdAt: t.createdAt,
      expiresAt: t.expiresAt,
      revokedAt: t.revokedAt,
      lastUsedAt: t.lastUsedAt,
    };
  }
  if (format >= 3) {
    for (const r of await store.jwtRoles(tx)) {
      yield {
        t: 'jwt_role',
        name: r.name,
        issuer: r.issuer,
        audience: r.audience,
        scopes: r.scopes,
        ttlMs: r.ttlMs,
        boundClaims: r.boundClaims,
        boundSubject: r.boundSubject,
        requiredClaims: r.requiredClaims,
        jwksUrl: r.jwksUrl,
        jwks: r.jwks,
        publicKey: r.publicKey,
        createdAt: r.createdAt,
        createdBy: r.createdBy,
      };
    }
  }
  if (format >= 4) {
    for (const x of await store.policies(tx)) {
      yield {
        t: 'secret_policy',
        project: x.project,
        env: x.env,
        name: x.name,
        rotateEveryMs: x.rotateEveryMs,
        expiresAt: x.expiresAt,
        expiresVersion: x.expiresVersion,
        generator: x.generator,
        auto: x.auto,
        remindedDueAt: x.remindedDueAt,
        updatedAt: x.updatedAt,
      };
    }
  }
  for await (const r of store.auditEvents(tx)) {
    const line: Line = {
      t: 'audit',
      seq: r.seq,
      ts: r.ts,
      actorId: r.actorId,
      actorName: r.actorName,
      action: r.action,
      project: r.project,
      env: r.env,
      target: r.target,
      outcome: r.outcome,
      ip: r.ip,
      requestId: r.requestId,
      detail: r.detail,
      prevHash: b64(r.prevHash),
      hash: b64(r.hash),
    };
    if (format === 1) {
      if (r.stream !== 0) throw new Error('backup dump: a format 1 body holds only the single chain (stream 0)');
    } else {
      line.stream = r.stream;
      line.streamSeq = r.streamSeq;
    }
    yield line;
  }
  if (format === 1) {
    const s0 = (await store.auditStreams(tx)).find((r) => r.id === 0);
    yield { t: 'audit_head', seq: s0?.headSeq ?? 0, hash: b64(s0 ? s0.headHash : Buffer.alloc(32)) };
    return;
  }
  for (const r of await store.auditStreams(tx)) {
    yield {
      t: 'audit_stream',
      id: r.id,
      node: r.node,
      createdAt: r.createdAt,
      headSeq: r.headSeq,
      headEvent: r.headEvent,
      headHash: b64(r.headHash),
      checkpointSeq: r.checkpointSeq,
      closedAt: r.closedAt,
    };
  }
  for await (const c of store.auditCheckpoints(tx)) {
    yield { t: 'audit_checkpoint', id: c.id, ts: c.ts, heads: c.heads, prevHash: b64(c.prevHash), hash: b64(c.hash) };
  }
}

export function countLine(c: BackupCounts, l: Line): void {
  switch (l.t) {
    case 'project':
      c.projects++;
      break;
    case 'env':
      c.envs++;
      break;
    case 'secret':
      c.secrets++;
      break;
    case 'version':
      c.versions++;
      break;
    case 'token':
      c.tokens++;
      break;
    case 'audit':
      c.audit++;
      break;
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
 * The whole backup as a stream of NDJSON text, in one pass over a snapshot:
 * the header (counts from count queries in the snapshot), the body, and the
 * end line with the body's SHA-256. If the body does not match the header's
 * counts the stream fails before its end line, so the file is refused.
 */
export async function dumpStream(
  c: Pick<Container, 'db' | 'keys' | 'storage' | 'stores'>,
): Promise<{ stream: Readable; header: BackupHeader }> {
  const snap = await readSnapshot(c.db);
  let released: Promise<void> | null = null;
  const release = () => (released ??= snap.release().catch(() => undefined));
  try {
    const deps: DumpDeps = { keys: c.keys, store: c.stores.backup };
    const counts = await c.stores.backup.counts(snap.tx);
    const vaultId = (await c.stores.meta.get('vault_id', snap.tx)) ?? 'unknown';
    const header: BackupHeader = {
      type: 'hush-backup',
      format: BACKUP_FORMAT,
      createdAt: new Date().toISOString(),
      vaultId,
      source: c.storage,
      counts,
    };
    async function* text(): AsyncGenerator<string> {
      try {
        yield JSON.stringify(header) + '\n';
        const h = createHash('sha256');
        const body = new BodyText(snap.tx, deps);
        for await (const chunk of body.chunks()) {
          h.update(chunk);
          yield chunk;
        }
        for (const k of Object.keys(counts) as (keyof BackupCounts)[]) {
          if (body.counts[k] !== counts[k])
            throw new Error(`backup dump: the snapshot holds ${counts[k]} ${k} but the dump wrote ${body.counts[k]}`);
        }
        const end: BackupEnd = { t: 'end', bodySha256: h.digest('hex') };
        yield JSON.stringify(end) + '\n';
      } finally {
        await release();
      }
    }
    const stream = Readable.from(text(), { objectMode: false });
    // Destroying a stream whose generator never started skips the generator's
    // finally block, so the snapshot is also released on close.
    stream.once('close', () => {
      void release();
    });
    return { stream, header };
  } catch (e) {
    await release();
    throw e;
  }
}

import { hasSchema, type Db, type Tx } from './db.js';
import { insertRows, query, rowsInsert, sql } from './sql.js';
import { toAudit, toStream, type AuditRow, type CheckpointRow, type StreamRow } from './audit-store.js';
import type { TokenRow } from './token-store.js';
import { jwtRoleStoreFactory, type JwtRoleRow } from './jwt-role-store.js';
import { policyStoreFactory, type BackupPolicy } from './policy-store.js';
import { AUDIT_COLUMNS } from './audit-store.js';

/**
 * Every table as a backup reads and writes it: what vault/backup/dump.ts
 * dumps and restore.ts restores, and nothing else.
 *
 * Reads come in the backup's canonical order, which is independent of the
 * engine and of row ids: text columns ordered byte-wise (`collate_c`:
 * PostgreSQL's default collation follows the database locale, under which
 * en_US orders `a_b` after `ab`), and read in pages (keyset pagination), so
 * memory stays bounded however large an environment is. Run them in one
 * snapshot (readSnapshot() in db.ts) for a consistent dump.
 *
 * Writes are batched multi-row inserts into an empty vault, in the caller's
 * transaction.
 *
 * The audit tables have their own section at the end.
 */

export interface BackupProject {
  id: number;
  name: string;
  createdAt: number;
}
export interface BackupEnv {
  id: number;
  name: string;
  revision: number;
  createdAt: number;
}
export interface BackupSecret {
  name: string;
  version: number;
  deleted: boolean;
  createdAt: number;
  updatedAt: number;
}
/** A version row with its secret's name; nonce, ciphertext and dekVersion are null for a deletion. */
export interface BackupVersion {
  secretName: string;
  version: number;
  nonce: Buffer | null;
  ciphertext: Buffer | null;
  dekVersion: number | null;
  deleted: boolean;
  createdBy: string;
  createdAt: number;
  /** The env revision that wrote it (null: restored from a format without revisions, until backfilled). */ revision: number | null;
}
export type NewSecret = { envId: number } & BackupSecret;
export type NewVersion = { secretId: number } & Omit<BackupVersion, 'secretName'>;
/** A token as restored: parents are linked afterwards (setTokenParent), since a parent may sort after its child. */
export type NewToken = Omit<TokenRow, 'parentId'>;

const PAGE = 500;
const VERSION_PAGE = 1000;

const num = (v: unknown): number | null => (v == null ? null : Number(v));

const SECRET = 'name, version, deleted, created_at, updated_at';
const VERSION = `select s.name, v.version, v.nonce, v.ciphertext, v.dek_version, v.deleted, v.created_by, v.created_at, v.revision
  from secret_versions v join secrets s on s.id = v.secret_id where s.env_id = ?`;
/**
 * The data section as one row per version (a secret without versions: one row, version columns null):
 * env_id, secret name, version, deleted, created_at, updated_at, then the version's
 * version, nonce, ciphertext, dek_version, deleted, created_by, created_at, revision.
 */
const DATA = `select s.env_id, s.name, s.version, s.deleted, s.created_at, s.updated_at,
  v.version, v.nonce, v.ciphertext, v.dek_version, v.deleted, v.created_by, v.created_at, v.revision
  from secrets s left join secret_versions v on v.secret_id = s.id`;
const DATA_PAGE = 2000;
const TOKEN = 'id, name, description, hash, scopes, parent_id, cidrs, created_at, expires_at, revoked_at, last_used_at';

const Q = {
  anyKey: query('select 1 as one from keys limit 1'),
  counts:
    query(`select (select count(*) from projects) as projects, (select count(*) from environments) as envs, (select count(*) from secrets) as secrets,
    (select count(*) from secret_versions) as versions, (select count(*) from tokens) as tokens, (select count(*) from audit_events) as audit`),
  projects: query('select id, name, created_at from projects order by name collate_c'),
  envs: query('select id, name, revision, created_at from environments where project_id = ? order by name collate_c'),
  secretsFirst: query(`select ${SECRET} from secrets where env_id = ? order by name collate_c limit ?`),
  secretsAfter: query(`select ${SECRET} from secrets where env_id = ? and name collate_c > ? order by name collate_c limit ?`),
  versionsFirst: query(`${VERSION} order by s.name collate_c, v.version limit ?`),
  versionsAfter: query(
    `${VERSION} and (s.name collate_c > ? or (s.name = ? and v.version > ?)) order by s.name collate_c, v.version limit ?`,
  ),
  allEnvs: query(
    'select e.id, e.project_id, e.name,' +
      ' e.revision, e.created_at from environments e' +
      (' join projects p on p.id = e.project_id' + ' order by p.name collate_c, e.name collate_c'),
  ),
  envDataFirst: query(`${DATA} where s.env_id = ? order by s.name collate_c, v.version limit ?`),
  envDataAfter: query(
    `${DATA} where s.env_id = ? and (s.name collate_c > ? or (s.name = ? and v.version > ?)) order by s.name collate_c, v.version limit ?`,
  ),
  // PostgreSQL: the whole data section as one ordered scan (a server-side cursor in the snapshot's transaction).
  dataDeclare: query(`declare hush_backup_data no scroll cursor for ${DATA}
    join environments e on e.id = s.env_id join projects p on p.id = e.project_id
    order by p.name collate_c, e.name collate_c, s.name collate_c, v.version`),
  dataFetch: query(`fetch ${DATA_PAGE} from hush_backup_data`),
  dataClose: query('close hush_backup_data'),
  tokensFirst: query(`select ${TOKEN} from tokens order by id collate_c limit ?`),
  tokensAfter: query(`select ${TOKEN} from tokens where id collate_c > ? order by id collate_c limit ?`),

  insertProject: query('insert into projects (name, dek_version, created_at) values (?, 1, ?) returning id'),
  insertEnv: query('insert into environments (project_id, name, revision, created_at) values (?, ?, ?, ?) returning id'),
  secretIds: query('select id, name from secrets where env_id = ? and name in json_text_list(?)'),
  setTokenParent: query('update tokens set parent_id = ? where id = ?'),
};
const INSERT_SECRETS = rowsInsert('secrets', ['env_id', 'name', 'version', 'deleted', 'created_at', 'updated_at']);
const INSERT_VERSIONS = rowsInsert('secret_versions', [
  'secret_id',
  'version',
  'nonce',
  'ciphertext',
  'dek_version',
  'deleted',
  'created_by',
  'created_at',
  'revision',
]);
const INSERT_TOKENS = rowsInsert('tokens', [
  'id',
  'name',
  'description',
  'hash',
  'scopes',
  'cidrs',
  'created_at',
  'expires_at',
  'revoked_at',
  'last_used_at',
]);

const toSecret = (r: any): BackupSecret => ({
  name: r.name,
  version: Number(r.version),
  deleted: !!r.deleted,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});
const toVersion = (r: any): BackupVersion => ({
  secretName: r.name,
  version: Number(r.version),
  nonce: r.nonce ?? null,
  ciphertext: r.ciphertext ?? null,
  dekVersion: num(r.dek_version),
  deleted: !!r.deleted,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  revision: num(r.revision),
});
const toToken = (r: any): TokenRow => ({
  id: r.id,
  name: r.name,
  description: r.description,
  hash: r.hash,
  scopes: JSON.parse(r.scopes),
  parentId: r.parent_id ?? null,
  cidrs: JSON.parse(r.cidrs),
  createdAt: Number(r.created_at),
  expiresAt: num(r.expires_at),
  revokedAt: num(r.revoked_at),
  lastUsedAt: num(r.last_used_at),
});

export function backupStoreFactory(db: Db) {
  const roles = jwtRoleStoreFactory(db);
  const policies = policyStoreFactory(db);
  return {
    /** True when the database already holds (part of) a vault: the schema and any key row. Reads only. */
    async holdsVault(): Promise<boolean> {
      if (!(await hasSchema(db))) return false;
      return (await sql(db).get(Q.anyKey)) !== undefined;
    },

    /** How many rows of each kind a dump of `tx` writes (a backup header's counts). */
    async counts(tx: Tx): Promise<{ projects: number; envs: number; secrets: number; versions: number; tokens: number; audit: number }> {
      const r = (await sql(db, tx).get(Q.counts))!;
      return {
        projects: Number(r.projects),
        envs: Number(r.envs),
        secrets: Number(r.secrets),
        versions: Number(r.versions),
        tokens: Number(r.tokens),
        audit: Number(r.audit),
      };
    },
    async projects(tx: Tx): Promise<BackupProject[]> {
      return (await sql(db, tx).all(Q.projects)).map((r) => ({ id: r.id, name: r.name, createdAt: Number(r.created_at) }));
    },
    async envs(projectId: number, tx: Tx): Promise<BackupEnv[]> {
      return (await sql(db, tx).all(Q.envs, projectId)).map((r) => ({
        id: r.id,
        name: r.name,
        revision: Number(r.revision),
        createdAt: Number(r.created_at),
      }));
    },
    /** Every secret of an environment (deleted ones too), by name. */
    async *secrets(envId: number, tx: Tx): AsyncGenerator<BackupSecret> {
      const r = sql(db, tx);
      let after: string | null = null;
      for (;;) {
        const page: BackupSecret[] = (
          after === null ? await r.all(Q.secretsFirst, envId, PAGE) : await r.all(Q.secretsAfter, envId, after, PAGE)
        ).map(toSecret);
        yield* page;
        if (page.length < PAGE) return;
        after = page[page.length - 1].name;
      }
    },
    /** Every version of an environment in (secret name, version) order: the order of secrets(), each secret's versions together. */
    async *versions(envId: number, tx: Tx): AsyncGenerator<BackupVersion> {
      const r = sql(db, tx);
      let after: BackupVersion | null = null;
      for (;;) {
        const page: BackupVersion[] = (
          after === null
            ? await r.all(Q.versionsFirst, envId, VERSION_PAGE)
            : await r.all(Q.versionsAfter, envId, after.secretName, after.secretName, after.version, VERSION_PAGE)
        ).map(toVersion);
        yield* page;
        if (page.length < VERSION_PAGE) return;
        after = page[page.length - 1];
      }
    },
    /** Every environment, in the dump's order (project name, then env name). */
    async allEnvs(tx: Tx): Promise<(BackupEnv & { projectId: number })[]> {
      return (await sql(db, tx).all(Q.allEnvs)).map((r) => ({
        id: Number(r.id),
        projectId: Number(r.project_id),
        name: r.name,
        revision: Number(r.revision),
        createdAt: Number(r.created_at),
      }));
    },
    /**
     * The whole data section as pages of raw rows (DATA's columns), in the
     * dump's order: `envIds` (allEnvs' order), and in each its secrets by
     * name and their versions by number. PostgreSQL: one ordered scan
     * through a cursor in `tx` (which must be a transaction: a snapshot),
     * a page per round trip, instead of queries per environment. SQLite:
     * pages of one environment at a time (each a cheap local call).
     */
    async *dataPages(envIds: readonly number[], tx: Tx): AsyncGenerator<any[][]> {
      const r = sql(db, tx);
      if (r.engine === 'postgres') {
        await r.run(Q.dataDeclare);
        let open = true;
        try {
          for (;;) {
            const page = await r.rows(Q.dataFetch);
            if (page.length) yield page;
            if (page.length < DATA_PAGE) break;
          }
          open = false;
          await r.run(Q.dataClose);
        } finally {
          // Abandoned part-way: the cursor ends with the snapshot's transaction.
          if (open) await r.run(Q.dataClose).catch(() => undefined);
        }
        return;
      }
      for (const envId of envIds) {
        let page = await r.rows(Q.envDataFirst, envId, DATA_PAGE);
        for (;;) {
          if (page.length) yield page;
          if (page.length < DATA_PAGE) break;
          const last = page[page.length - 1];
          page = await r.rows(Q.envDataAfter, envId, last[1], last[1], last[6] ?? -1, DATA_PAGE);
        }
      }
    },
    /** Every token, by id. */
    /** JWT auth roles, by name (format 3). */
    jwtRoles: (tx: Tx): Promise<JwtRoleRow[]> => roles.list(tx),
    async insertJwtRole(r: JwtRoleRow, tx: Tx): Promise<void> {
      await roles.insert(r, tx);
    },
    /** Secret lifecycle policies, by project, env and secret name (format 4). */
    policies: (tx: Tx): Promise<BackupPolicy[]> => policies.forBackup(tx),
    insertPolicy: (p: BackupPolicy, tx: Tx): Promise<boolean> => policies.restore(p, tx),
    async *tokens(tx: Tx): AsyncGenerator<TokenRow> {
      const r = sql(db, tx);
      let after: string | null = null;
      for (;;) {
        const page: TokenRow[] = (after === null ? await r.all(Q.tokensFirst, PAGE) : await r.all(Q.tokensAfter, after, PAGE)).map(toToken);
        yield* page;
        if (page.length < PAGE) return;
        after = page[page.length - 1].id;
      }
    },

    async insertProject(name: string, createdAt: number, tx: Tx): Promise<number> {
      return Number((await sql(db, tx).get(Q.insertProject, name, createdAt))!.id);
    },
    async insertEnv(projectId: number, name: string, revision: number, createdAt: number, tx: Tx): Promise<number> {
      return Number((await sql(db, tx).get(Q.insertEnv, projectId, name, revision, createdAt))!.id);
    },
    async insertSecrets(rows: readonly NewSecret[], tx: Tx): Promise<void> {
      await insertRows(
        sql(db, tx),
        INSERT_SECRETS,
        rows.map((s) => [s.envId, s.name, s.version, s.deleted, s.createdAt, s.updatedAt]),
      );
    },
    /** Ids of an environment's secrets by name (names not found are absent). */
    async secretIds(envId: number, names: readonly string[], tx: Tx): Promise<Map<string, number>> {
      const rows = await sql(db, tx).all(Q.secretIds, envId, JSON.stringify(names));
      return new Map(rows.map((r) => [r.name as string, Number(r.id)]));
    },
    async insertVersions(rows: readonly NewVersion[], tx: Tx): Promise<void> {
      await insertRows(
        sql(db, tx),
        INSERT_VERSIONS,
        rows.map((v) => [v.secretId, v.version, v.nonce, v.ciphertext, v.dekVersion, v.deleted, v.createdBy, v.createdAt, v.revision]),
      );
    },
    async insertTokens(rows: readonly NewToken[], tx: Tx): Promise<void> {
      await insertRows(
        sql(db, tx),
        INSERT_TOKENS,
        rows.map((t) => [
          t.id,
          t.name,
          t.description,
          t.hash,
          JSON.stringify(t.scopes),
          JSON.stringify(t.cidrs),
          t.createdAt,
          t.expiresAt,
          t.revokedAt,
          t.lastUsedAt,
        ]),
      );
    },
    async setTokenParent(id: string, parentId: string, tx: Tx): Promise<void> {
      await sql(db, tx).run(Q.setTokenParent, parentId, id);
    },

    // Audit tables: the events in seq order, the stream registry, the checkpoints.
    auditEvents: (tx: Tx) => auditEvents(db, tx),
    auditStreams: (tx: Tx) => auditStreams(db, tx),
    auditCheckpoints: (tx: Tx) => auditCheckpoints(db, tx),
    insertAudit: (rows: readonly AuditRow[], tx: Tx) => insertAudit(db, rows, tx),
    insertAuditStream: (row: StreamRow, tx: Tx) => insertAuditStream(db, row, tx),
    insertAuditCheckpoint: (row: CheckpointRow, tx: Tx) => insertAuditCheckpoint(db, row, tx),
    afterAuditRestore: (tx: Tx) => afterAuditRestore(db, tx),
  };
}
export type BackupStore = ReturnType<typeof backupStoreFactory>;

/* ------------------------------------------------------------------------- */
/* Audit tables                                                              */
/* ------------------------------------------------------------------------- */

const AUDIT_PAGE = 2000;
const STREAM_COLUMNS = ['id', 'node', 'created_at', 'head_seq', 'head_event', 'head_hash', 'checkpoint_seq', 'closed_at'];

const QA = {
  page: query(`select ${AUDIT_COLUMNS.join(', ')} from audit_events where seq > ? order by seq limit ?`),
  streams: query(`select ${STREAM_COLUMNS.join(', ')} from audit_streams order by id`),
  checkpoints: query('select id, ts, heads, prev_hash, hash from audit_checkpoints where id > ? order by id limit ?'),
  insertStream: query(`insert into audit_streams (${STREAM_COLUMNS.join(', ')}) values (?, ?, ?, ?, ?, ?, ?, ?)`),
  insertCheckpoint: query('insert into audit_checkpoints (id, ts, heads, prev_hash, hash) values (?, ?, ?, ?, ?)'),
  // PostgreSQL: rows restored with their own numbers; the generators must go on above them.
  seqAfterRestore: query(
    "select setval('audit_events_seq', greatest((select coalesce(max(seq), 0) from audit_events), 1), (select count(*) > 0 from audit_events))",
  ),
  streamIdAfterRestore: query(
    "select setval(pg_get_serial_sequence('audit_streams', 'id'), greatest((select coalesce(max(id), " +
      '0) from audit_streams), 1), (select count(*) > 0 from audit_streams where id > 0))',
  ),
};
const INSERT_AUDIT = rowsInsert('audit_events', AUDIT_COLUMNS);

/** One page of audit events after `afterSeq`, in seq order. */
async function auditPage(db: Db, afterSeq: number, tx: Tx): Promise<AuditRow[]> {
  return (await sql(db, tx).all(QA.page, afterSeq, AUDIT_PAGE)).map(toAudit);
}

/** Every audit event, in seq order. */
async function* auditEvents(db: Db, tx: Tx): AsyncGenerator<AuditRow> {
  for (let seq = 0; ;) {
    const page = await auditPage(db, seq, tx);
    if (page.length === 0) return;
    yield* page;
    seq = page[page.length - 1].seq;
  }
}

async function auditStreams(db: Db, tx: Tx): Promise<StreamRow[]> {
  return (await sql(db, tx).all(QA.streams)).map(toStream);
}

async function* auditCheckpoints(db: Db, tx: Tx): AsyncGenerator<CheckpointRow> {
  for (let id = 0; ;) {
    const page = await sql(db, tx).all(QA.checkpoints, id, AUDIT_PAGE);
    if (page.length === 0) return;
    for (const r of page)
      yield { id: Number(r.id), ts: Number(r.ts), heads: r.heads, prevHash: Buffer.from(r.prev_hash), hash: Buffer.from(r.hash) };
    id = Number(page[page.length - 1].id);
  }
}

/** Audit events as a backup holds them; target and detail are stored as JSON text. */
async function insertAudit(db: Db, rows: readonly AuditRow[], tx: Tx): Promise<void> {
  await insertRows(
    sql(db, tx),
    INSERT_AUDIT,
    rows.map((e) => [
      e.seq,
      e.ts,
      e.actorId,
      e.actorName,
      e.action,
      e.project,
      e.env,
      JSON.stringify(e.target),
      e.outcome,
      e.ip,
      e.requestId,
      JSON.stringify(e.detail),
      e.prevHash,
      e.hash,
      e.stream,
      e.streamSeq,
    ]),
  );
}

async function insertAuditStream(db: Db, r: StreamRow, tx: Tx): Promise<void> {
  await sql(db, tx).run(QA.insertStream, r.id, r.node, r.createdAt, r.headSeq, r.headEvent, r.headHash, r.checkpointSeq, r.closedAt);
}

async function insertAuditCheckpoint(db: Db, c: CheckpointRow, tx: Tx): Promise<void> {
  await sql(db, tx).run(QA.insertCheckpoint, c.id, c.ts, c.heads, c.prevHash, c.hash);
}

async function afterAuditRestore(db: Db, tx: Tx): Promise<void> {
  const s = sql(db, tx);
  if (s.engine !== 'postgres') return; // SQLite numbers from the table itself (max(seq) + 1; AUTOINCREMENT's own record)
  await s.get(QA.seqAfterRestore);
  await s.get(QA.streamIdAfterRestore);
}

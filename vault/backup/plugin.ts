import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import type { Container } from '../container.js';
import { ConfigError } from '../errors.js';
import { SYSTEM_CONTEXT } from '../services/audit/audit-service.js';
import { transaction } from '../store/db.js';
import { withErrors, typed } from '../http/schemas.js';
import { BACKUP_STATS_KEY, recordBackupStats } from './stats.js';
import { startClusterJob } from '../services/schedule.js';
import type { EncryptOptions } from './pgp.js';

/** Settles `done` into a result without leaving an unhandled rejection. */
const settle = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );

/**
 * Reads and checks the scheduled-backup settings: the schedule parses, a
 * backup dir is set, and the recipient keys and passphrase file are readable
 * and usable. Throws ConfigError; null when no schedule is set. buildServer
 * runs it before it opens (or initialises) the vault, so a setup that cannot
 * work never creates a vault whose root token nobody saw.
 */
export async function loadBackupSchedule(cfg: Readonly<Config>): Promise<{ enc: EncryptOptions; dir: string } | null> {
  if (!cfg.backupSchedule) return null;
  if (!cfg.backupDir) throw new ConfigError('--backup-schedule needs --backup-dir');
  if (cfg.backupRecipients.length === 0 && !cfg.backupPassphraseFile)
    throw new ConfigError('--backup-schedule needs --backup-recipient or --backup-passphrase-file');
  const [{ readPassphraseFile }, { Cron }] = await Promise.all([import('./backup-service.js'), import('croner')]);
  try {
    new Cron(cfg.backupSchedule, { timezone: cfg.backupTimezone, paused: true }).stop();
  } catch (e) {
    throw new ConfigError(`invalid --backup-schedule: ${(e as Error).message}`);
  }
  const enc: EncryptOptions = {};
  const read = <T>(setting: string, file: string, fn: (f: string) => T): T => {
    try {
      return fn(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ConfigError(`invalid ${setting}: cannot read ${file} (${code && /^E[A-Z]+$/.test(code) ? code : (e as Error).message})`);
    }
  };
  if (cfg.backupRecipients.length)
    enc.recipients = cfg.backupRecipients.map((f) => read('--backup-recipient', f, (p) => readFileSync(p, 'utf8')));
  if (cfg.backupPassphraseFile) enc.passphrase = read('--backup-passphrase-file', cfg.backupPassphraseFile, readPassphraseFile);
  const { readRecipientKey } = await import('./pgp.js');
  for (const r of enc.recipients ?? []) {
    try {
      await readRecipientKey(r);
    } catch (e) {
      throw new ConfigError(`--backup-recipient: ${(e as Error).message}`);
    }
  }
  return { enc, dir: cfg.backupDir };
}

/**
 * Backups in the server: POST /v1/backups (grant `backup`) streams an
 * encrypted export, and --backup-schedule runs them on a cron schedule.
 */
export async function backupPlugin(
  c: Container,
  base: FastifyInstance,
  server: { onClose: (fn: () => Promise<void>) => void },
): Promise<void> {
  const app = typed(base);
  // A download's backup.create audit event is written after its last byte;
  // closing waits for it, so it never races the database being closed.
  const inflight = new Set<Promise<unknown>>();
  app.addHook('onClose', async () => {
    await Promise.allSettled([...inflight]);
  });

  app.post(
    '/v1/backups',
    {
      config: { auth: () => ({ kind: 'backup' }), action: 'backup.create' },
      schema: {
        summary: 'Stream an OpenPGP-encrypted backup (backup). Give recipients (armored public keys) and/or a passphrase.',
        body: Type.Object(
          {
            recipients: Type.Optional(Type.Array(Type.String({ maxLength: 200_000 }), { maxItems: 20 })),
            passphrase: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            // An armored private key, with its passphrase in signingKeyPassphrase (the SDK's shape), or {armored, passphrase}.
            signingKey: Type.Optional(
              Type.Union([
                Type.String({ maxLength: 200_000 }),
                Type.Object(
                  { armored: Type.String({ maxLength: 200_000 }), passphrase: Type.Optional(Type.String({ maxLength: 4096 })) },
                  { additionalProperties: false },
                ),
              ]),
            ),
            signingKeyPassphrase: Type.Optional(Type.String({ maxLength: 4096 })),
            armor: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: withErrors({
          200: {
            description:
              'The backup, streamed: an OpenPGP message (binary, or ASCII-armored with "armor": true). X-Hush-Backup-Counts says what it holds.',
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              'application/pgp-encrypted': { schema: { type: 'string' } },
            },
          } as unknown as TSchema,
        }),
      },
    },
    async (req, reply) => {
      const b = req.body;
      const enc: EncryptOptions = { recipients: b.recipients, passphrase: b.passphrase, armor: b.armor };
      if (typeof b.signingKey === 'string') enc.signingKey = { armored: b.signingKey, passphrase: b.signingKeyPassphrase };
      else if (b.signingKey)
        enc.signingKey = { armored: b.signingKey.armored, passphrase: b.signingKey.passphrase ?? b.signingKeyPassphrase };
      // Loaded on first use: openpgp is a large share of an idle server's memory.
      const { backupFileName, createBackup } = await import('./backup-service.js');
      const startedAt = Date.now();
      const run = await createBackup(c, enc, req.auditCtx);
      const settled = settle(run.done).then(async (r) => {
        if (!r.ok) req.log.error({ err: { message: String((r.e as Error)?.message) } }, 'backup stream failed');
        else
          await recordBackupStats(c, startedAt, r.v.bytes).catch((e) =>
            req.log.warn({ err: { message: String((e as Error)?.message) } }, "could not record the backup's figures for the metrics"),
          );
      });
      inflight.add(settled);
      void settled.finally(() => inflight.delete(settled));
      reply.header('content-type', enc.armor ? 'application/pgp-encrypted' : 'application/octet-stream');
      reply.header('content-disposition', `attachment; filename="${backupFileName(new Date())}"`);
      reply.header('x-hush-backup-counts', JSON.stringify(run.header.counts));
      return reply.send(run.stream);
    },
  );

  const cfg = c.config;
  const setup = await loadBackupSchedule(cfg);
  if (!setup) return;
  const { enc, dir } = setup;
  const { backupFileName, createBackup, pruneBackups, writeAtomically } = await import('./backup-service.js');
  const log = app.log;

  async function runOnce(tick: Date): Promise<void> {
    let audited = false;
    try {
      // The dir is checked before a snapshot is opened, so a bad dir costs no dump.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const startedAt = Date.now();
      const run = await createBackup(c, enc, SYSTEM_CONTEXT);
      audited = true; // run.done records backup.create, ok or error
      const [written, result] = await Promise.all([settle(writeAtomically(dir, backupFileName(tick), run.stream)), settle(run.done)]);
      if (!written.ok) throw written.e;
      if (!result.ok) throw result.e;
      const pruned = pruneBackups(dir, cfg.backupKeep);
      // Health reports the latest run: a success clears the error (null, not '').
      await transaction(c.db, async (tx) => {
        await c.stores.meta.set('backup_last_success', new Date().toISOString(), tx);
        await c.stores.meta.delete('backup_last_error', tx);
        const at = Date.now();
        await c.stores.meta.set(BACKUP_STATS_KEY, JSON.stringify({ at, ms: at - startedAt, bytes: result.v.bytes }), tx);
      });
      // The counts go out as one flat object under a name no redaction path matches ('*.secrets' blanks any 'secrets' key one level down).
      const { secrets: secretNames, ...counts } = run.header.counts;
      log.info(
        { file: written.v, bytes: result.v.bytes, backupCounts: { ...counts, secretNames }, pruned: pruned.length },
        'scheduled backup written',
      );
    } catch (e) {
      const msg = `${new Date().toISOString()} ${(e as NodeJS.ErrnoException).code ?? ''} ${String((e as Error).message).slice(0, 200)}`
        .replace(/ +/g, ' ')
        .trim();
      log.error({ err: { message: msg } }, 'SCHEDULED BACKUP FAILED');
      await transaction(c.db, (tx) => c.stores.meta.set('backup_last_error', msg, tx)).catch(() => undefined);
      if (!audited)
        await c.audit
          .record(SYSTEM_CONTEXT, { action: 'backup.create', outcome: 'error', detail: { scheduled: true, error: msg.slice(0, 200) } })
          .catch(() => undefined);
    }
  }

  const job = await startClusterJob({
    name: 'backup',
    setting: '--backup-schedule',
    cron: cfg.backupSchedule!,
    timezone: cfg.backupTimezone,
    db: c.db,
    leases: c.stores.leases,
    log,
    // A sealed server cannot read a value: it leaves the tick to a server that can.
    ready: (tick) => {
      if (c.sealed) log.warn({ tick: tick.toISOString() }, 'scheduled backup skipped: this server is sealed');
      return !c.sealed;
    },
    run: (tick) =>
      runOnce(tick).catch((e: Error) => {
        log.error({ err: { message: e.message } }, 'SCHEDULED BACKUP FAILED');
      }),
  });
  log.info({ schedule: cfg.backupSchedule, next: job.next()?.toISOString(), dir }, 'backup schedule active');
  server.onClose(job.stop);
}

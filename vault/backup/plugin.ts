import { Type } from '@sinclair/typebox';
import { Cron } from 'croner';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Container } from '../container.js';
import { ConfigError } from '../errors.js';
import { SYSTEM_CONTEXT } from '../services/audit/audit-service.js';
import { withErrors } from '../http/schemas.js';
import { backupFileName, createBackup, pruneBackups, writeAtomically } from './backup-service.js';
import type { EncryptOptions } from './pgp.js';

/** Settles `done` into a result without leaving an unhandled rejection. */
const settle = <T>(p: Promise<T>) => p.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e }));

/**
 * Backups in the server: POST /v1/backups (grant `backup`) streams an
 * encrypted export, and --backup-schedule runs them on a cron schedule.
 */
export async function backupPlugin(c: Container, app: FastifyInstance, server: { onClose: (fn: () => Promise<void>) => void }): Promise<void> {
  app.post('/v1/backups', {
    config: { auth: () => ({ kind: 'backup' }), action: 'backup.create' },
    schema: {
      summary: 'Stream an OpenPGP-encrypted backup (backup). Give recipients (armored public keys) and/or a passphrase.',
      body: Type.Object({
        recipients: Type.Optional(Type.Array(Type.String({ maxLength: 200_000 }), { maxItems: 20 })),
        passphrase: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
        signingKey: Type.Optional(Type.Object({ armored: Type.String({ maxLength: 200_000 }), passphrase: Type.Optional(Type.String({ maxLength: 4096 })) }, { additionalProperties: false })),
        armor: Type.Optional(Type.Boolean()),
      }, { additionalProperties: false }),
      response: withErrors({}),
    },
  }, async (req, reply) => {
    const body = req.body as EncryptOptions;
    const run = await createBackup(c, body, req.auditCtx);
    void settle(run.done).then((r) => { if (!r.ok) req.log.error({ err: { message: String((r.e as Error)?.message) } }, 'backup stream failed'); });
    reply.header('content-type', body.armor ? 'application/pgp-encrypted' : 'application/octet-stream');
    reply.header('content-disposition', `attachment; filename="${backupFileName(new Date())}"`);
    reply.header('x-hush-backup-counts', JSON.stringify(run.header.counts));
    return reply.send(run.stream);
  });

  const cfg = c.config;
  if (!cfg.backupSchedule) return;
  if (!cfg.backupDir) throw new ConfigError('--backup-schedule needs --backup-dir');
  if (cfg.backupRecipients.length === 0 && !cfg.backupPassphraseFile) throw new ConfigError('--backup-schedule needs --backup-recipient or --backup-passphrase-file');
  const enc: EncryptOptions = {};
  try {
    if (cfg.backupRecipients.length) enc.recipients = cfg.backupRecipients.map((p) => readFileSync(p, 'utf8'));
    if (cfg.backupPassphraseFile) enc.passphrase = readFileSync(cfg.backupPassphraseFile, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(`cannot read a backup key file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const { readRecipientKey } = await import('./pgp.js');
  for (const r of enc.recipients ?? []) {
    try { await readRecipientKey(r); } catch (e) { throw new ConfigError(`--backup-recipient: ${(e as Error).message}`); }
  }
  const holder = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const dir = cfg.backupDir;
  const log = app.log;

  /** Exactly one server claims each scheduled tick: the first to insert its lease row. */
  async function claim(tick: Date): Promise<boolean> {
    const name = `backup:${tick.toISOString()}`;
    const rows = await c.db('leases').insert({ name, holder, expires_at: tick.getTime() + 86_400_000 }).onConflict('name').ignore().returning('name');
    await c.db('leases').where('name', 'like', 'backup:%').andWhere('expires_at', '<', Date.now()).del();
    return rows.length > 0;
  }

  async function runOnce(tick: Date): Promise<void> {
    try {
      if (!(await claim(tick))) {
        log.info({ tick: tick.toISOString() }, 'scheduled backup taken by another server');
        return;
      }
      const run = await createBackup(c, enc, SYSTEM_CONTEXT);
      const [file, result] = await Promise.all([writeAtomically(dir, backupFileName(tick), run.stream), settle(run.done)]);
      if (!result.ok) throw result.e;
      const pruned = pruneBackups(dir, cfg.backupKeep);
      await c.stores.meta.set('backup_last_success', new Date().toISOString());
      await c.stores.meta.set('backup_last_error', '');
      log.info({ file, bytes: result.v.bytes, counts: run.header.counts, pruned: pruned.length }, 'scheduled backup written');
    } catch (e) {
      const msg = `${new Date().toISOString()} ${(e as NodeJS.ErrnoException).code ?? ''} ${String((e as Error).message).slice(0, 200)}`.trim();
      log.error({ err: { message: msg } }, 'SCHEDULED BACKUP FAILED');
      await c.stores.meta.set('backup_last_error', msg).catch(() => undefined);
    }
  }

  let running: Promise<void> | null = null;
  let job: Cron;
  try {
    job = makeJob();
  } catch (e) {
    throw new ConfigError(`invalid --backup-schedule: ${(e as Error).message}`);
  }
  function makeJob() { return new Cron(cfg.backupSchedule!, { timezone: cfg.backupTimezone, protect: true, catch: (e) => log.error({ err: { message: String(e) } }, 'backup scheduler error') }, async (self: Cron) => {
    const tick = self.currentRun() ?? new Date();
    running = runOnce(new Date(Math.floor(tick.getTime() / 1000) * 1000));
    await running;
    running = null;
  }); }
  log.info({ schedule: cfg.backupSchedule, next: job.nextRun()?.toISOString(), dir }, 'backup schedule active');
  server.onClose(async () => {
    job.stop();
    if (running) await running;
  });
}

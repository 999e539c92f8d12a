import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { startClusterJob } from '../schedule.js';
import { SYSTEM_CONTEXT } from './audit-service.js';

/**
 * --verify-schedule: `audit verify` on a cron schedule, once per tick
 * across the servers sharing the database. A failure is logged and sent
 * to audit.verify_failed webhooks.
 */
export async function verifySchedulePlugin(
  c: Container,
  app: FastifyInstance,
  server: { onClose: (fn: () => Promise<void>) => void },
): Promise<void> {
  const cron = c.config.verifySchedule;
  if (!cron) return;
  const log = app.log;
  const job = await startClusterJob({
    name: 'verify',
    setting: '--verify-schedule',
    cron,
    timezone: c.config.backupTimezone,
    db: c.db,
    leases: c.stores.leases,
    log,
    ready: () => !c.sealed,
    async run(tick) {
      try {
        const r = await c.audit.verify(undefined, undefined, { ctx: SYSTEM_CONTEXT, scheduled: true });
        if (r.ok) log.info({ tick: tick.toISOString(), checked: r.checked, headSeq: r.headSeq }, 'scheduled audit verify: ok');
        else log.error({ tick: tick.toISOString(), firstBadSeq: r.firstBadSeq, reason: r.reason }, 'SCHEDULED AUDIT VERIFY FAILED');
      } catch (e) {
        log.error({ err: { message: (e as Error).message } }, 'scheduled audit verify could not run');
      }
    },
  });
  log.info({ schedule: cron, next: job.next()?.toISOString() }, 'audit verify schedule active');
  server.onClose(job.stop);
}

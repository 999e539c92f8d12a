import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import { ConfigError } from '../errors.js';
import type { Db } from '../store/db.js';
import { transaction } from '../store/db.js';
import type { LeaseStore } from '../store/lease-store.js';

/**
 * A cron job that runs once per scheduled tick across every server sharing
 * the database: the first server to insert the tick's lease row runs it
 * (scheduled backups, the scheduled audit verify). The tick is named by its
 * scheduled time, not the (possibly late) firing time, so every server
 * names it the same way.
 */
export interface ClusterJob {
  /** Lease names are `<name>:<tick ISO time>`. */
  name: string;
  /** The setting it comes from, for the error message (--backup-schedule). */
  setting: string;
  cron: string;
  timezone?: string;
  db: Db;
  leases: LeaseStore;
  log: Pick<FastifyBaseLogger, 'info' | 'error'>;
  /** Runs when this server won the tick. */
  run: (tick: Date) => Promise<void>;
  /** Checked before claiming: false leaves the tick to another server (a sealed one cannot work). */
  ready?: (tick: Date) => boolean;
}

const holder = () => `${hostname().slice(0, 40)}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`.slice(0, 64);

/** Starts the job; the returned function stops it and waits for a run in flight. */
export async function startClusterJob(job: ClusterJob): Promise<{ stop: () => Promise<void>; next: () => Date | null }> {
  const { Cron } = await import('croner');
  const me = holder();
  let running: Promise<void> | null = null;

  async function claim(tick: Date): Promise<boolean> {
    return transaction(job.db, async (tx) => {
      const won = await job.leases.claim(`${job.name}:${tick.toISOString()}`, me, tick.getTime() + 86_400_000, tx);
      await job.leases.dropExpired(`${job.name}:`, Date.now(), tx);
      return won;
    });
  }

  let cron: InstanceType<typeof Cron>;
  try {
    cron = new Cron(
      job.cron,
      {
        timezone: job.timezone,
        protect: true,
        catch: (e) => job.log.error({ err: { message: String(e) } }, `${job.name} scheduler error`),
      },
      async (self: InstanceType<typeof Cron>) => {
        const fired = self.currentRun() ?? new Date();
        const tick = self.previousRuns(1, new Date(fired.getTime() + 1))[0] ?? new Date(Math.floor(fired.getTime() / 1000) * 1000);
        if (job.ready && !job.ready(tick)) return;
        running = (async () => {
          let won: boolean;
          try {
            won = await claim(tick);
          } catch (e) {
            job.log.error(
              { tick: tick.toISOString(), err: { message: (e as Error).message } },
              `scheduled ${job.name}: the tick could not be claimed (database unreachable?); skipped`,
            );
            return;
          }
          if (!won) {
            job.log.info({ tick: tick.toISOString() }, `scheduled ${job.name} taken by another server`);
            return;
          }
          await job.run(tick);
        })();
        try {
          await running;
        } finally {
          running = null;
        }
      },
    );
  } catch (e) {
    throw new ConfigError(`invalid ${job.setting}: ${(e as Error).message}`);
  }
  return {
    async stop() {
      cron.stop();
      if (running) await running.catch(() => undefined);
    },
    next: () => cron.nextRun(),
  };
}

/** Checks a cron expression before anything starts (a bad schedule must not leave a half-started server). */
export async function validateCron(cron: string | null, setting: string, timezone?: string): Promise<void> {
  if (!cron) return;
  const { Cron } = await import('croner');
  try {
    new Cron(cron, { timezone, paused: true }).stop();
  } catch (e) {
    throw new ConfigError(`invalid ${setting}: ${(e as Error).message}`);
  }
}

import type { FastifyInstance } from 'fastify';
import { hostname } from 'node:os';
import type { Container } from '../../container.js';

/**
 * Runs the rotation pass (lifecycle-service.ts `tick`) every
 * --rotation-check-interval. Every server sharing a database may run it:
 * a due auto secret is rotated by the one server that claims its lease
 * (`secret-rotation:<secret id>:<due time>`, as the scheduled backup claims
 * its tick), and a reminder is written by the one whose update of
 * reminded_due_at changed the row. A sealed server skips its turn.
 */
export function rotationSchedulerPlugin(c: Container, app: FastifyInstance, server: { onClose: (fn: () => Promise<void>) => void }): void {
  const every = c.config.rotationCheckIntervalMs;
  if (!every) return;
  const holder = `${hostname().slice(0, 40)}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`.slice(0, 64);
  let running: Promise<void> | null = null;
  const pass = async () => {
    if (running || c.sealed) return;
    running = (async () => {
      try {
        const r = await c.lifecycle.tick(Date.now(), holder);
        if (r.rotated || r.reminded || r.failed) app.log.info({ rotation: r }, 'rotation pass');
      } catch (e) {
        app.log.warn(
          { err: { message: String((e as Error).message).slice(0, 200) } },
          'rotation pass failed; retried at the next interval',
        );
      }
    })();
    await running;
    running = null;
  };
  const timer = setInterval(() => {
    void pass();
  }, every);
  timer.unref();
  // A first pass soon after start, so a restart does not delay what fell due while the server was down.
  const first = setTimeout(
    () => {
      void pass();
    },
    Math.min(every, 5_000),
  );
  first.unref();
  server.onClose(async () => {
    clearInterval(timer);
    clearTimeout(first);
    if (running) await running;
  });
}

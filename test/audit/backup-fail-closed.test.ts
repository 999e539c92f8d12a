import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { waitFor } from '../helpers/cli.js';
import { withAuditBlocked } from '../helpers/db.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { allEvents, assertContiguous, makeEnv, openSqlite, verify } from './util.js';

/**
 * A backup is a read of every value in the vault. Like every other read it
 * must not leave the server unless its audit event is committed: when the
 * audit log cannot be written, POST /v1/backups fails with 503 before any
 * byte of the backup is sent.
 */
describe('backups fail closed when the audit log cannot be written (sqlite)', () => {
  let s: TestServer;
  let db: Knex;

  before(async () => {
    s = await startServer();
    await makeEnv(s, 'api', 'prod');
    assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/DB_PASSWORD', { value: 'backup-secret-value' })).status, 200);
    db = openSqlite(s.dataDir);
  });
  after(async () => {
    await db.destroy();
    await s.close();
  });

  it('POST /v1/backups gets 503 audit_unavailable and no backup bytes while audit inserts fail', async () => {
    await withAuditBlocked(db, async () => {
      const r = await s.api('POST', '/v1/backups', { passphrase: 'correct horse battery staple' });
      assert.equal(r.status, 503, `status ${r.status}, body of ${typeof r.body === 'string' ? r.body.length : 0} chars`);
      assert.equal(r.body.error.code, 'audit_unavailable');
    });
  });

  it('once the audit log works, a backup is recorded before it starts (backup.start) and when it ends (backup.create)', async () => {
    const r = await s.api('POST', '/v1/backups', { passphrase: 'correct horse battery staple' });
    assert.equal(r.status, 200);
    // backup.create is written once the stream has ended, which may be just after the body arrived.
    let events: Awaited<ReturnType<typeof allEvents>> = [];
    await waitFor(async () => (events = await allEvents(s, 'action=backup.*')).length >= 2, 'backup.create recorded');
    assert.deepEqual(
      events.map((e) => [e.action, e.outcome]),
      [
        ['backup.start', 'ok'],
        ['backup.create', 'ok'],
      ],
    );
    assert.deepEqual(events[0].detail, { recipients: 0, passphrase: true, signed: false });
    assert.equal(events[0].requestId, events[1].requestId);
    assertContiguous(await allEvents(s));
    assert.equal((await verify(s)).ok, true);
  });
});

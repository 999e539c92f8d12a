import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKUP_FORMAT } from '../../vault/backup/dump.js';
import { restoreBackupFile } from '../../vault/backup/local.js';
import { loadConfig } from '../../vault/config.js';
import { createLogger } from '../../vault/server.js';
import { assertSameAsBackup, backupFileLines, backupOverHttp, storedDump } from '../backup/support.js';
import { apiFor } from '../helpers/http.js';
import { freshPgDatabase, NEEDS_PG, startServer, tempDir, type TestServer } from '../helpers/server.js';

const P = '/v1/projects/api/envs/prod';
const PASS = 'lifecycle backup pass';
const silent = createLogger('silent');

describe('backups carry rotation policies and generators (format 4)', () => {
  const work = tempDir('hush-lc-bk-');
  const file = join(work, 'b.pgp');
  let s: TestServer;
  let body: string[];
  before(async () => {
    s = await startServer({ settings: { 'rotation-check-interval': '0' } });
    await s.api('POST', '/v1/projects', { name: 'api' });
    await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
    await s.api('POST', `${P}/secrets/SESSION/generate`, { charset: 'words', length: 5, rotateEvery: '30d', auto: true });
    await s.api('PUT', `${P}/secrets/API_KEY`, { value: 'k1' });
    await s.api('PUT', `${P}/secrets/API_KEY/policy`, { rotateEvery: '90d', expiresAt: '2030-06-01T00:00:00Z' });
    await s.api('PUT', `${P}/secrets/REF`, { value: 'key=${API_KEY}' });
    const r = await backupOverHttp(s, file, { passphrase: PASS });
    assert.equal(r.status, 200, JSON.stringify(r.error));
    body = await backupFileLines(file, { passphrase: PASS });
  });
  after(async () => {
    await s?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('the backup is format 4 or later and holds one secret_policy line per policy, with no value in it', () => {
    const header = JSON.parse(body[0]);
    assert.equal(header.format, BACKUP_FORMAT);
    assert.ok(BACKUP_FORMAT >= 4, 'policies since format 4');
    const pols = body
      .slice(1)
      .map((l) => JSON.parse(l))
      .filter((l) => l.t === 'secret_policy');
    assert.deepEqual(
      pols.map((p) => p.name),
      ['API_KEY', 'SESSION'],
    );
    const session = pols.find((p) => p.name === 'SESSION');
    assert.equal(session.auto, true);
    assert.deepEqual(JSON.parse(session.generator), { charset: 'words', length: 5 });
    assert.equal(pols.find((p) => p.name === 'API_KEY').expiresAt, Date.parse('2030-06-01T00:00:00Z'));
    // The stored (raw) value of a reference is what is backed up.
    assert.ok(body.some((l) => l.includes('"value":"key=${API_KEY}"')));
  });

  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`restores into ${engine} with its policies, and reads back line for line`, engine === 'postgres' ? NEEDS_PG : {}, async () => {
      const db = engine === 'postgres' ? (await freshPgDatabase())! : null;
      const dataDir = join(work, engine);
      try {
        const cfg = loadConfig({ 'data-dir': dataDir, ...(db ? { 'database-url': db.url } : {}) }, {});
        const r = await restoreBackupFile(cfg, file, { passphrase: PASS }, silent);
        assert.equal(r.verified, true);
        assertSameAsBackup(body.slice(1), await storedDump(cfg));
        const t = await startServer({ dataDir, settings: { 'rotation-check-interval': '0', ...(db ? { 'database-url': db.url } : {}) } });
        try {
          const api = apiFor(t.url, s.rootToken);
          const pol = await api('GET', `${P}/secrets/API_KEY/policy`);
          assert.equal(pol.status, 200, pol.text);
          assert.equal(pol.body.rotateEvery, '90d');
          assert.equal(pol.body.expiresAt, '2030-06-01T00:00:00.000Z');
          const gen = await api('GET', `${P}/secrets/SESSION/policy`);
          assert.deepEqual([gen.body.auto, gen.body.generated], [true, { charset: 'words', length: 5 }]);
          assert.equal((await api('GET', `${P}/secrets/REF`)).body.value, 'key=k1');
        } finally {
          await t.close({ keepDir: true });
        }
      } finally {
        await db?.drop();
      }
    });
  }
});

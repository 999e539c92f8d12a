/**
 * A backup made by the previous release restores, on both engines, and the
 * restored vault works: test/fixtures/backup-81a4ece-format4.asc is a format-4
 * backup written by commit 81a4ece (the release before issue 22's second
 * round: before the one-cursor dump and the batched data keys) through
 * `POST /v1/backups` of a vault it made over its API: 2 projects, 4
 * environments (one empty), secrets with history, deletions and a secret set
 * again after its deletion, names whose byte order differs from locale
 * order, a unicode value, a rotation policy, a JWT role, tokens (a child, a
 * revoked one) and the audit events all that wrote. Encrypted with the
 * passphrase below. ROOT is that throwaway vault's root token: tokens carry
 * over a restore, so it reads the restored copy.
 *
 * Each restore is `hush backup restore` (the CLI), followed by `hush audit
 * verify` and a read of every live secret through the API of a server on the
 * restored vault, compared with the values the backup itself holds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBackupFile } from '../../vault/backup/local.js';
import { loadConfig } from '../../vault/config.js';
import { runHush } from '../helpers/cli.js';
import { BACKENDS, freshPgDatabase, onBackend, startServer, tempDir } from '../helpers/server.js';
import { assertSameAsBackup, backupFileLines, storedDump } from './support.js';

const FILE = new URL('../../../test/fixtures/backup-81a4ece-format4.asc', import.meta.url).pathname;
const PASS = 'previous release backup, format 4';
const ROOT = 'hush_gOLbjhSZC2ExeyBLeCUZCSvNUjMaBoEtUS13csf0uoS46rS3K';
const COUNTS = { projects: 2, envs: 4, secrets: 19, versions: 24, tokens: 4, audit: 27 };

/** project/env -> live secret name -> value, as the backup holds them (each secret's current version, if not deleted). */
function liveValues(body: string[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  const current = new Map<string, { version: number; deleted: boolean }>();
  for (const text of body) {
    const l = JSON.parse(text);
    if (l.t === 'env') out.set(`${l.project}/${l.name}`, new Map());
    if (l.t === 'secret') current.set(`${l.project}/${l.env}/${l.name}`, { version: l.version, deleted: l.deleted });
    if (l.t === 'version') {
      const s = current.get(`${l.project}/${l.env}/${l.name}`)!;
      if (l.version === s.version && !s.deleted) out.get(`${l.project}/${l.env}`)!.set(l.name, l.value);
    }
  }
  return out;
}

describe("the previous release's format-4 backup (81a4ece)", () => {
  it('verifies: header, counts, body hash and audit chain', async () => {
    const r = await verifyBackupFile(FILE, { passphrase: PASS });
    assert.equal(r.header.format, 4);
    assert.deepEqual(r.counts, COUNTS);
    assert.equal(r.auditChecked, COUNTS.audit);
  });
});

for (const backend of BACKENDS) {
  describe(
    `the previous release's format-4 backup restores (${backend}), then audit verify and a read of every secret`,
    onBackend(backend),
    () => {
      const work = tempDir('hush-bk-f4-');
      const passFile = join(work, 'pass.txt');
      let body: string[];
      before(async () => {
        writeFileSync(passFile, PASS + '\n', { mode: 0o600 });
        body = (await backupFileLines(FILE, { passphrase: PASS })).slice(1);
      });
      after(() => rmSync(work, { recursive: true, force: true }));

      it('restores with the CLI; the vault reads back line for line, verifies its audit chain and gives back every secret', async () => {
        const pg = backend === 'postgres' ? (await freshPgDatabase())! : null;
        const dir = join(work, 'target');
        try {
          const r = await runHush(
            [
              'backup',
              'restore',
              FILE,
              '--passphrase-file',
              passFile,
              '--data-dir',
              dir,
              ...(pg ? ['--database-url', pg.url] : []),
              '--json',
            ],
            { timeoutMs: 120_000 },
          );
          assert.equal(r.code, 0, r.stderr);
          const out = JSON.parse(r.stdout);
          assert.equal(out.ok, true);
          assert.equal(out.verified, true);
          assert.deepEqual(out.counts, COUNTS);
          assertSameAsBackup(body, await storedDump(loadConfig({ 'data-dir': dir, ...(pg ? { 'database-url': pg.url } : {}) }, {})));

          const s = await startServer({ dataDir: dir, settings: pg ? { 'database-url': pg.url } : {} });
          try {
            const v = await runHush(['audit', 'verify', '--json'], { env: { HUSH_ADDR: s.url, HUSH_TOKEN: ROOT } });
            assert.equal(v.code, 0, v.stderr + v.stdout);
            const verdict = JSON.parse(v.stdout);
            assert.equal(verdict.ok, true, v.stdout);
            assert.ok(verdict.checked > COUNTS.audit, `the restored events and the restore's own (${verdict.checked})`);

            const want = liveValues(body);
            let read = 0;
            for (const [where, values] of want) {
              const [p, e] = where.split('/');
              const got = await s.api('GET', `/v1/projects/${p}/envs/${e}/secrets`, undefined, ROOT);
              assert.equal(got.status, 200, `${where}: ${JSON.stringify(got.body)}`);
              assert.deepEqual(Object.fromEntries(Object.entries(got.body.secrets).sort()), Object.fromEntries([...values].sort()), where);
              for (const [k, val] of values) {
                const one = await s.api('GET', `/v1/projects/${p}/envs/${e}/secrets/${encodeURIComponent(k)}`, undefined, ROOT);
                assert.equal(one.status, 200, `${where}/${k}`);
                assert.equal(one.body.value, val, `${where}/${k}`);
                read++;
              }
            }
            assert.equal(read, 18, 'every live secret of the backup read (19 secrets, one deleted)');
            assert.equal(want.get('api/empty')!.size, 0);
            // The rest of format 4 came over too: the policy and the JWT role.
            assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets/KEY_3/policy', undefined, ROOT)).status, 200);
            assert.equal((await s.api('GET', '/v1/auth/jwt/roles/deploy', undefined, ROOT)).status, 200);
            // New writes on the restored vault (ids past the restored ones).
            assert.equal((await s.api('PUT', '/v1/projects/api/envs/empty/secrets/NEW', { value: 'after' }, ROOT)).status, 200);
            assert.equal((await s.api('GET', '/v1/projects/api/envs/empty/secrets/NEW', undefined, ROOT)).body.value, 'after');
          } finally {
            await s.close();
          }
        } finally {
          await pg?.drop();
        }
      });
    },
  );
}

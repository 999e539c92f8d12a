/**
 * Issue 22's "must show": `hush backup restore` (the CLI, one pass, batched
 * writes, synchronous=OFF then fsync) followed by `hush audit verify` and a
 * read of every secret of every environment on the restored vault, on both
 * engines. The read is through the API of a server started on the restored
 * vault, with the source vault's root token, and must give back exactly what
 * the source held.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runHush } from '../helpers/cli.js';
import { BACKENDS, freshPgDatabase, onBackend, pgAdmin, startOn, startServer, tempDir, type TestServer } from '../helpers/server.js';
import { backupOverHttp, seedVault, type Seeded } from './support.js';

const PASS = 'restore then verify';

for (const backend of BACKENDS) {
  describe(`restore, then audit verify and a read of every secret (${backend})`, onBackend(backend), () => {
    const work = tempDir('hush-bk-readback-');
    let src: TestServer;
    let seeded: Seeded;
    const file = join(work, 'backup.pgp');
    const passFile = join(work, 'pass.txt');

    before(async () => {
      src = await startOn(backend);
      seeded = await seedVault(src, { projects: 2, envs: 2, secrets: 120 });
      // Some audit history with other shapes of target and detail.
      for (let i = 0; i < 5; i++) assert.equal((await src.api('GET', '/v1/projects/p1/envs/e1/secrets')).status, 200);
      assert.equal((await backupOverHttp(src, file, { passphrase: PASS })).status, 200);
      writeFileSync(passFile, PASS + '\n', { mode: 0o600 });
    });
    after(async () => {
      await src?.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('the CLI restores; the restored vault verifies its audit chain and gives back every secret', async () => {
      const pg = backend === 'postgres' ? (await freshPgDatabase())! : null;
      const dir = join(work, 'target');
      try {
        const r = await runHush(
          [
            'backup',
            'restore',
            file,
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

        if (pg) {
          // The restore dropped the foreign keys of the bulk-loaded tables for its writes and added them back, checked.
          const fks = await pgAdmin(
            'select conrelid::regclass::text' +
              ' as t, conname, convalidated,' +
              (' pg_get_constraintdef(oid) as def from' + " pg_constraint where contype = 'f' order by 1, 2"),
            [],
            pg.url,
          );
          const want = [
            ['environments', 'environments_project_id_foreign', 'FOREIGN KEY (project_id) REFERENCES projects(id) ON DELETE CASCADE'],
            ['secret_versions', 'secret_versions_secret_id_foreign', 'FOREIGN KEY (secret_id) REFERENCES secrets(id) ON DELETE CASCADE'],
            ['secrets', 'secrets_env_id_foreign', 'FOREIGN KEY (env_id) REFERENCES environments(id) ON DELETE CASCADE'],
          ];
          for (const [t, name, def] of want)
            assert.ok(
              fks.some((f) => f.t === t && f.conname === name && f.convalidated === true && f.def === def),
              `${name} is back: ${JSON.stringify(fks)}`,
            );
        }
        const s = await startServer({ dataDir: dir, settings: pg ? { 'database-url': pg.url } : {} });
        try {
          // `hush audit verify` against the restored vault, with the source's root token (tokens carry over).
          const v = await runHush(['audit', 'verify', '--json'], { env: { HUSH_ADDR: s.url, HUSH_TOKEN: src.rootToken } });
          assert.equal(v.code, 0, v.stderr + v.stdout);
          const verdict = JSON.parse(v.stdout);
          assert.equal(verdict.ok, true, v.stdout);
          assert.ok(verdict.checked >= out.counts.audit, `every restored event checked (${verdict.checked} of ${out.counts.audit})`);

          // Every secret of every environment, as the source held it.
          let read = 0;
          for (const [where, want] of seeded.values) {
            const [p, e] = where.split('/');
            const got = await s.api('GET', `/v1/projects/${p}/envs/${e}/secrets`, undefined, src.rootToken);
            assert.equal(got.status, 200, `${where}: ${JSON.stringify(got.body)}`);
            assert.deepEqual(Object.fromEntries(Object.entries(got.body.secrets).sort()), Object.fromEntries([...want].sort()), where);
            read += want.size;
          }
          assert.ok(read > 300, `read ${read} secrets`);
          // And one at a time through the single-secret path, for one environment.
          for (const [k, val] of seeded.values.get('p1/e0')!) {
            const one = await s.api('GET', `/v1/projects/p1/envs/e0/secrets/${encodeURIComponent(k)}`, undefined, src.rootToken);
            assert.equal(one.status, 200, k);
            assert.equal(one.body.value, val, k);
          }
          // The restore chose the ids: new rows made afterwards must not collide with them (PostgreSQL's sequences were moved).
          assert.equal((await s.api('POST', '/v1/projects', { name: 'after-restore' }, src.rootToken)).status, 201);
          assert.equal((await s.api('POST', '/v1/projects/after-restore/envs', { name: 'prod' }, src.rootToken)).status, 201);
          assert.equal(
            (await s.api('PUT', '/v1/projects/after-restore/envs/prod/secrets/NEW', { value: 'fresh' }, src.rootToken)).status,
            200,
          );
          assert.equal((await s.api('PUT', '/v1/projects/p0/envs/e0/secrets/ANOTHER', { value: 'more' }, src.rootToken)).status, 200);
          assert.equal(
            (await s.api('GET', '/v1/projects/after-restore/envs/prod/secrets/NEW', undefined, src.rootToken)).body.value,
            'fresh',
          );
          // Deleting a restored project removes its environments, secrets and versions (the keys cascade as before).
          assert.equal((await s.api('DELETE', '/v1/projects/p1', undefined, src.rootToken)).status, 200);
          assert.equal((await s.api('GET', '/v1/projects/p1/envs/e0/secrets', undefined, src.rootToken)).status, 404);
          if (pg)
            assert.equal(
              (
                await pgAdmin(
                  "select count(*)::int as n from secrets s join environments e on e.id = s.env_id join projects p on p.id = e.project_id where p.name = 'p1'",
                  [],
                  pg.url,
                )
              )[0].n,
              0,
            );
        } finally {
          await s.close();
        }
      } finally {
        await pg?.drop();
      }
    });
  });
}

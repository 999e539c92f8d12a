import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateMasterKeyBase64 } from '../../vault/crypto/keyring.js';
import { openDb } from '../../vault/store/db.js';
import { BACKENDS, onBackend, freshPgDatabase, startOn, startServer, tempDir } from '../helpers/server.js';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const dist = new URL('../', import.meta.url).pathname;

async function seed(s: Awaited<ReturnType<typeof startServer>>, n = 5) {
  await s.api('POST', '/v1/projects', { name: 'api' });
  await s.api('POST', '/v1/projects/api/envs', { name: 'prod' });
  const values: Record<string, string> = {};
  for (let i = 0; i < n; i++) values[`K${i}`] = `value-${i}-${Math.random().toString(36).slice(2)}`;
  assert.equal((await s.api('PATCH', '/v1/projects/api/envs/prod/secrets', { set: values })).status, 200);
  return values;
}

describe('encryption at rest', () => {
  it('a written secret value never appears in the raw bytes of the data dir', async () => {
    const s = await startServer();
    const needle = `needle-${(await generateMasterKeyBase64()).replace(/[^A-Za-z0-9]/g, '')}`;
    await seed(s);
    assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/UNIQUE', { value: needle })).status, 200);
    assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets/UNIQUE')).body.value, needle);
    const scan = () => {
      const files = readdirSync(s.dataDir);
      assert.ok(files.includes('hush.db'));
      for (const f of files) {
        const bytes = readFileSync(join(s.dataDir, f));
        assert.equal(bytes.includes(Buffer.from(needle)), false, `value found in ${f}`);
        assert.equal(bytes.includes(Buffer.from(s.rootToken)), false, `root token found in ${f}`);
      }
    };
    scan(); // while running: hush.db, hush.db-wal, hush.db-shm, master.key
    const dir = s.dataDir;
    await s.close({ keepDir: true });
    for (const f of readdirSync(dir))
      assert.equal(readFileSync(join(dir, f)).includes(Buffer.from(needle)), false, `value found in ${f} after close`);
  });

  it('data files are created private (dir 0700, files 0600)', async () => {
    const s = await startServer();
    // The server process sets umask 077; in-process tests check the files Hush creates explicitly.
    assert.equal(readdirSync(s.dataDir).includes('master.key'), true);
    const { statSync } = await import('node:fs');
    assert.equal(statSync(s.dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(s.dataDir, 'master.key')).mode & 0o777, 0o600);
    await s.close();
  });

  for (const backend of BACKENDS) {
    it(`a ciphertext copied into another row fails as an integrity error (${backend})`, onBackend(backend), async () => {
      const s = await startOn(backend);
      await seed(s, 2);
      const db = openDb({
        url: s.server.container.db.client.config.client === 'pg' ? s.config.databaseUrl! : `sqlite:${join(s.dataDir, 'hush.db')}`,
      });
      try {
        const rows = await db('secret_versions as v')
          .join('secrets as s', function () {
            this.on('s.id', '=', 'v.secret_id').andOn('s.version', '=', 'v.version');
          })
          .select('v.id', 's.name', 'v.nonce', 'v.ciphertext')
          .orderBy('s.name');
        const [k0, k1] = rows;
        await db('secret_versions').where({ id: k1.id }).update({ nonce: k0.nonce, ciphertext: k0.ciphertext });
      } finally {
        await db.destroy();
      }
      const r = await s.api('GET', '/v1/projects/api/envs/prod/secrets/K1');
      assert.equal(r.status, 500);
      assert.equal(r.body.error.code, 'integrity_error');
      assert.match(r.body.error.message, /integrity check failed for api\/prod\/K1/);
      assert.equal((await s.api('GET', '/v1/projects/api/envs/prod/secrets/K0')).status, 200, 'the untouched row still reads');
      await s.close();
    });
  }
});

describe('master key', () => {
  it('a wrong master key refuses startup with a clear message and leaves the database byte-identical', async () => {
    const s = await startServer();
    await seed(s);
    const dir = s.dataDir;
    await s.close({ keepDir: true });
    const before = sha(join(dir, 'hush.db'));
    await assert.rejects(
      startServer({ dataDir: dir, settings: { 'master-key': await generateMasterKeyBase64() } }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'wrong_master_key');
        assert.match(e.message, /^wrong master key/);
        return true;
      },
    );
    assert.equal(sha(join(dir, 'hush.db')), before);
    assert.equal(existsSync(join(dir, 'hush.db-wal')) ? readFileSync(join(dir, 'hush.db-wal')).length : 0, 0);
  });

  it('refuses a key file readable by group or others, and says why', async () => {
    const dir = tempDir();
    const keyFile = join(tempDir(), 'mk');
    writeFileSync(keyFile, await generateMasterKeyBase64(), { mode: 0o644 });
    chmodSync(keyFile, 0o644);
    await assert.rejects(startServer({ dataDir: dir, settings: { 'master-key-file': keyFile } }), /readable by group or others.*chmod 600/);
    await assert.rejects(startServer({ dataDir: dir, settings: { 'master-key-file': join(dir, 'missing') } }), /does not exist/);
  });

  it('an explicitly supplied key wins over master.key in the data dir', async () => {
    const keyDir = tempDir();
    const keyFile = join(keyDir, 'mk');
    writeFileSync(keyFile, await generateMasterKeyBase64(), { mode: 0o600 });
    const s = await startServer({ settings: { 'master-key-file': keyFile } });
    const values = await seed(s, 1);
    const dir = s.dataDir;
    assert.equal(existsSync(join(dir, 'master.key')), false, 'no dev key is written when a key is supplied');
    await s.close({ keepDir: true });
    writeFileSync(join(dir, 'master.key'), await generateMasterKeyBase64(), { mode: 0o600 });
    const again = await startServer({ dataDir: dir, settings: { 'master-key-file': keyFile } });
    assert.equal((await again.api('GET', '/v1/projects/api/envs/prod/secrets/K0', undefined, null)).status, 401);
    await again.close();
    await assert.rejects(startServer({ dataDir: dir }), /wrong master key/);
    void values;
  });

  for (const backend of BACKENDS) {
    it(`rotate-master rewraps keys only; secrets read back unchanged with the new key (${backend})`, onBackend(backend), async () => {
      const s = await startOn(backend);
      const values = await seed(s, 20);
      const db = s.server.container.db;
      const ciphertexts = async () =>
        (await db('secret_versions').select('id', 'ciphertext', 'nonce').orderBy('id')).map(
          (r: any) => `${r.id}:${Buffer.from(r.ciphertext).toString('hex')}:${Buffer.from(r.nonce).toString('hex')}`,
        );
      const before = await ciphertexts();
      const wrappedBefore = (await db('keys').select('wrapped')).map((r: any) => Buffer.from(r.wrapped).toString('hex'));
      const newKey = await generateMasterKeyBase64();
      const r = await s.api('POST', '/v1/sys/rotate-master', { newKey });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.rewrapped, wrappedBefore.length);
      assert.deepEqual(await ciphertexts(), before, 'no secret value was re-encrypted');
      const wrappedAfter = (await db('keys').select('wrapped')).map((x: any) => Buffer.from(x.wrapped).toString('hex'));
      for (const w of wrappedAfter) assert.equal(wrappedBefore.includes(w), false);
      // The running server keeps working, on the new key.
      assert.deepEqual((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).body.secrets, values);
      assert.equal((await s.api('PUT', '/v1/projects/api/envs/prod/secrets/AFTER', { value: 'a' })).status, 200);
      assert.equal((await s.api('POST', '/v1/projects', { name: 'newproj' })).status, 201);
      const dir = s.dataDir;
      const url = s.config.databaseUrl;
      const token = s.rootToken;
      await s.server.close();
      const extra = url ? { 'database-url': url } : {};
      await assert.rejects(startServer({ dataDir: dir, settings: { ...extra } }), /wrong master key/, 'the old key no longer opens it');
      const again = await startServer({ dataDir: dir, settings: { ...extra, 'master-key': newKey } });
      const all = await again.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, token);
      assert.equal(all.status, 200, 'the old root token still works (the pepper survived rotation)');
      assert.deepEqual(all.body.secrets, { ...values, AFTER: 'a' });
      await again.close();
      await s.close();
    });
  }

  it('an exception part-way through rotation leaves the vault wholly on the old key', async () => {
    const s = await startServer();
    const values = await seed(s, 3);
    await s.api('POST', '/v1/projects', { name: 'p2' });
    const { masterKeyFromBase64 } = await import('../../vault/crypto/keyring.js');
    const newKey = await generateMasterKeyBase64();
    const mk = await masterKeyFromBase64(newKey, 'test');
    const oldFp = s.server.container.keys.fingerprint;
    const ctx = { actorId: 'test', actorName: 'test', ip: null, requestId: null };
    await assert.rejects(
      s.server.container.rotation.rotateMaster(mk, ctx, (done) => {
        if (done === 3) throw new Error('power cut');
      }),
      /power cut/,
    );
    const fps = (await s.server.container.db('keys').select('mk_fingerprint')).map((r: any) => r.mk_fingerprint);
    assert.ok(fps.length >= 5);
    assert.deepEqual(new Set(fps), new Set([oldFp]));
    assert.deepEqual((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).body.secrets, values);
    const dir = s.dataDir;
    await s.close({ keepDir: true });
    await assert.rejects(startServer({ dataDir: dir, settings: { 'master-key': newKey } }), /wrong master key/);
    const again = await startServer({ dataDir: dir });
    assert.equal((await again.api('GET', '/v1/sys/health', undefined, null)).status, 200);
    await again.close();
  });

  for (const backend of BACKENDS) {
    it(`kill -9 in the middle of a rotation leaves the vault wholly on the old key (${backend})`, onBackend(backend), async () => {
      const pgdb = backend === 'postgres' ? await freshPgDatabase() : null;
      const s = await startServer({ settings: pgdb ? { 'database-url': pgdb.url } : {} });
      const values = await seed(s, 3);
      for (const p of ['p1', 'p2', 'p3', 'p4']) await s.api('POST', '/v1/projects', { name: p });
      const dir = s.dataDir;
      const token = s.rootToken;
      await s.server.close();
      const newKey = await generateMasterKeyBase64();
      const child = spawn(process.execPath, [join(dist, 'fixtures/rotate-and-hang.js'), dir, newKey, ...(pgdb ? [pgdb.url] : [])], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((res, rej) => {
        child.stdout.on('data', (d) => {
          if (String(d).includes('MID')) res();
        });
        child.on('exit', (code) => rej(new Error(`rotation fixture exited early (${code})`)));
      });
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const extra = pgdb ? { 'database-url': pgdb.url } : {};
      await assert.rejects(startServer({ dataDir: dir, settings: { ...extra, 'master-key': newKey } }), /wrong master key/);
      const again = await startServer({ dataDir: dir, settings: extra });
      assert.deepEqual((await again.api('GET', '/v1/projects/api/envs/prod/secrets', undefined, token)).body.secrets, values);
      await again.close();
      await pgdb?.drop();
    });
  }

  it('rotating a project data key keeps old values readable; --rewrap moves them to the new version', async () => {
    const s = await startServer();
    const values = await seed(s, 7);
    const db = s.server.container.db;
    const r = await s.api('POST', '/v1/projects/api/rotate', {});
    assert.equal(r.status, 200);
    assert.equal(r.body.dekVersion, 2);
    assert.equal(r.body.rewrapped, 0);
    await s.api('PUT', '/v1/projects/api/envs/prod/secrets/NEW', { value: 'n' });
    const dekVersions = async () =>
      (await db('secret_versions').whereNotNull('dek_version').select('dek_version')).map((x: any) => x.dek_version).sort();
    assert.deepEqual(await dekVersions(), [1, 1, 1, 1, 1, 1, 1, 2]);
    assert.deepEqual((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).body.secrets, { ...values, NEW: 'n' });
    const rw = await s.api('POST', '/v1/projects/api/rotate', { rewrap: true });
    assert.equal(rw.body.dekVersion, 3);
    assert.equal(rw.body.rewrapped, 8);
    assert.deepEqual(await dekVersions(), [3, 3, 3, 3, 3, 3, 3, 3]);
    assert.deepEqual((await s.api('GET', '/v1/projects/api/envs/prod/secrets')).body.secrets, { ...values, NEW: 'n' });
    await s.close();
  });
});

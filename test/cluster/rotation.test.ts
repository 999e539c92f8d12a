/**
 * A master-key rotation made through one server is picked up by the others
 * without a restart: two real `hush server` processes (A and B) on one
 * PostgreSQL database, each with its own key file. The operator's workflow
 * (docs/keys.md): write the new key into every server's key file, then
 * rotate through one of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runHush } from '../helpers/cli.js';
import { newMasterKey, startCluster, writeKeyFile, type Cluster, type ClusterNode } from '../helpers/cluster.js';
import { assertNoLeaks, observe, secretValue } from '../helpers/leaks.js';
import { freshPgDatabase, NEEDS_PG, startServer, tempDir } from '../helpers/server.js';
import { join } from 'node:path';
import { openDb } from '../../vault/store/db.js';
import { masterKeyFromBase64 } from '../../vault/crypto/keyring.js';

const fingerprint = async (key: string) => (await masterKeyFromBase64(key, 'test')).fingerprint;

describe('master-key rotation across two servers on one PostgreSQL database', NEEDS_PG, () => {
  let c: Cluster;
  let A: ClusterNode;
  let B: ClusterNode;
  let pidB: number | undefined;
  const values: Record<string, string> = {};

  /** Creates project P with env prod and one secret through `node`; returns the status of each step. */
  async function makeProject(node: ClusterNode, p: string): Promise<number[]> {
    values[p] = secretValue(`-${p}`);
    const out = [(await node.api('POST', '/v1/projects', { name: p })).status];
    if (out[0] !== 201) return out;
    out.push((await node.api('POST', `/v1/projects/${p}/envs`, { name: 'prod' })).status);
    out.push((await node.api('PUT', `/v1/projects/${p}/envs/prod/secrets/K`, { value: values[p] })).status);
    return out;
  }

  async function read(node: ClusterNode, p: string) {
    return node.api('GET', `/v1/projects/${p}/envs/prod/secrets/K`);
  }

  async function keyFingerprints(): Promise<Set<string>> {
    const db = openDb({ url: c.dbUrl });
    try {
      return new Set((await db('keys').select('mk_fingerprint')).map((r) => r.mk_fingerprint as string));
    } finally {
      await db.destroy();
    }
  }

  before(async () => {
    c = await startCluster({ nodes: 2, args: ['--rate-limit', '10000000', '--auth-fail-limit', '1000000'] });
    [A, B] = c.nodes;
    pidB = B.child.pid;
    assert.deepEqual(await makeProject(A, 'early'), [201, 201, 200]);
    assert.deepEqual(await makeProject(A, 'unread'), [201, 201, 200]);
    // B has unwrapped the data key of "early" (and the token pepper) before any rotation; "unread" it has never opened.
    assert.equal((await read(B, 'early')).body.value, values.early);
  });
  after(async () => {
    await c?.close();
  });

  it(
    'rotated through A with every key file updated: B wraps new keys under the new key and reads ' + 'everything, without a restart',
    async () => {
      const k2 = newMasterKey();
      writeKeyFile(A.keyFile, k2);
      writeKeyFile(B.keyFile, k2);
      // The CLI command of the workflow, run against A with A's (updated) key file.
      const r = await runHush(['keys', 'rotate-master', '--new-key-file', A.keyFile], {
        env: { HUSH_ADDR: A.url, HUSH_TOKEN: c.rootToken },
      });
      observe('hush keys rotate-master', r.stdout + r.stderr);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Master key rotated: \d+ wrapped key\(s\) moved from \S+ to \S+\./);
      assert.match(r.stdout, /every server.s master key file/);

      // B creates a project: its data key is wrapped under the new master key.
      assert.deepEqual(await makeProject(B, 'made-on-b'), [201, 201, 200]);
      assert.equal((await read(B, 'made-on-b')).body.value, values['made-on-b']);
      // A project made on A after the rotation, read on B.
      assert.deepEqual(await makeProject(A, 'made-on-a'), [201, 201, 200]);
      assert.equal((await read(B, 'made-on-a')).body.value, values['made-on-a']);
      // A data key rewrapped by the rotation that B never held, and one it held before.
      assert.equal((await read(B, 'unread')).body.value, values.unread);
      assert.equal((await read(B, 'early')).body.value, values.early);
      assert.equal((await read(A, 'made-on-b')).body.value, values['made-on-b']);

      assert.deepEqual([...(await keyFingerprints())], [await fingerprint(k2)], 'every wrapped key is under the new master key');
      assert.equal(B.alive(), true);
      assert.equal(B.child.pid, pidB, 'B was not restarted');
    },
  );

  it(
    "rotated through A while B's key file still holds the old key: B answers 503 master_key_changed " +
      'naming its file, keeps serving what it holds, and catches up once the file is updated',
    async () => {
      const k3 = newMasterKey();
      writeKeyFile(A.keyFile, k3);
      const rot = await A.api('POST', '/v1/sys/rotate-master', { newKey: k3 });
      assert.equal(rot.status, 200, rot.text);
      assert.equal(rot.body.to, await fingerprint(k3));

      // A new data key cannot be wrapped on B: a clear error, no 500, nothing half-made.
      const made = await B.api('POST', '/v1/projects', { name: 'refused-on-b' });
      assert.equal(made.status, 503, made.text);
      assert.equal(made.body.error.code, 'master_key_changed');
      assert.ok(made.body.error.message.includes(`put the new master key in ${B.keyFile} on this server`), made.body.error.message);
      assert.equal(made.body.error.details.vaultKey, await fingerprint(k3));
      assert.ok(!made.text.includes(k3), 'the error carries key material');
      assert.ok(!(await A.api('GET', '/v1/projects')).body.projects.some((p: { name: string }) => p.name === 'refused-on-b'));

      // What B already holds keeps working: tokens, and data keys it has unwrapped.
      assert.equal((await read(B, 'early')).body.value, values.early);
      assert.equal((await read(B, 'made-on-a')).body.value, values['made-on-a']);
      assert.equal((await B.api('PUT', '/v1/projects/early/envs/prod/secrets/K2', { value: secretValue() })).status, 200);
      // A data key made after this rotation cannot be opened on B yet: the same clear error.
      assert.deepEqual(await makeProject(A, 'after-k3'), [201, 201, 200]);
      const r = await read(B, 'after-k3');
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.error.code, 'master_key_changed');
      assert.equal((await B.api('GET', '/v1/sys/health', undefined, null)).status, 200);
      assert.equal(B.alive(), true);

      // The operator writes the key into B's file: the next request that needs it picks it up.
      writeKeyFile(B.keyFile, k3);
      assert.equal((await read(B, 'after-k3')).body.value, values['after-k3']);
      assert.deepEqual(await makeProject(B, 'made-on-b-k3'), [201, 201, 200]);
      assert.deepEqual([...(await keyFingerprints())], [await fingerprint(k3)]);
      assert.equal(B.child.pid, pidB, 'B was not restarted');
      assert.match(B.stdout(), /put the new master key in/);
      assert.match(B.stdout(), /this server now uses the new key/);
    },
  );

  it('a key file holding neither key is named in the error, and nothing breaks', async () => {
    const k4 = newMasterKey();
    writeKeyFile(A.keyFile, k4);
    assert.equal((await A.api('POST', '/v1/sys/rotate-master', { newKey: k4 })).status, 200);
    writeKeyFile(B.keyFile, newMasterKey()); // a wrong key: adopted only if the key-check row opens with it
    const r = await B.api('POST', '/v1/projects', { name: 'wrong-key' });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'master_key_changed');
    writeKeyFile(B.keyFile, 'not a key');
    const again = await B.api('POST', '/v1/projects', { name: 'wrong-key' });
    assert.equal(again.status, 503);
    assert.equal(again.body.error.code, 'master_key_changed');
    assert.ok(!again.text.includes('not a key'));
    writeKeyFile(B.keyFile, k4);
    assert.equal((await B.api('POST', '/v1/projects', { name: 'wrong-key' })).status, 201);
  });

  it('both servers restart on their updated key files, and serve everything', async () => {
    for (const n of [A, B]) {
      const again = await c.restart(n);
      for (const p of ['early', 'unread', 'made-on-a', 'made-on-b', 'after-k3', 'made-on-b-k3'])
        assert.equal((await read(again, p)).body.value, values[p], `${again.name} ${p}`);
    }
  });

  it('no master key, token or secret value appears in any output', async (t) => {
    await c.close();
    assertNoLeaks(t, 'cluster rotation');
  });
});

describe('the periodic master-key check (what watch() runs)', NEEDS_PG, () => {
  it('an idle server adopts a rotation made elsewhere from its key file, and says what to do while the ' + 'file is stale', async () => {
    const pg = (await freshPgDatabase())!;
    const files = [join(tempDir(), 'a.key'), join(tempDir(), 'b.key')];
    const k1 = newMasterKey();
    for (const f of files) writeKeyFile(f, k1);
    const a = await startServer({ settings: { 'database-url': pg.url, 'master-key-file': files[0] } });
    const b = await startServer({ settings: { 'database-url': pg.url, 'master-key-file': files[1] } });
    try {
      const keysB = b.server.container.keys;
      assert.equal(await keysB.refresh(), true, 'nothing rotated yet');
      const k2 = newMasterKey();
      const rot = await a.api('POST', '/v1/sys/rotate-master', { newKey: k2 });
      assert.equal(rot.status, 200);
      assert.equal(await keysB.refresh(), false, "b's file still holds the old key");
      assert.equal(keysB.fingerprint, await fingerprint(k1));
      writeKeyFile(files[1], k2);
      assert.equal(await keysB.refresh(), true);
      assert.equal(keysB.fingerprint, await fingerprint(k2));
    } finally {
      await b.close();
      await a.close();
      await pg.drop();
    }
  });
});

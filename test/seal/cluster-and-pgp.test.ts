/**
 * Sealed start across nodes and with OpenPGP-encrypted shares:
 * - two real servers on one PostgreSQL database, each unsealed on its own;
 *   `operator seal` seals one node, `operator seal --all` every node;
 * - `operator init --pgp-keys`: each share encrypted to one GnuPG key, read
 *   back with the real `gpg --decrypt`, and a quorum of them unseals.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runHush, spawnServer, waitFor, type Listening } from '../helpers/cli.js';
import { createGpgHome, exportPublicKey, generateEd25519Key, generateRsaKey, gpgDecrypt, GPG_SKIP } from '../helpers/gpg.js';
import { freshPgDatabase, NEEDS_PG } from '../helpers/server.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const call = async (url: string, method: string, path: string, body?: unknown, token?: string) => {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, text };
};

describe('sealed start on two nodes sharing PostgreSQL', NEEDS_PG, () => {
  it('each node is unsealed on its own; seal seals one node, seal --all every node', async (t) => {
    const db = (await freshPgDatabase())!;
    t.after(() => db.drop());
    const dir = tmp('hush-seal-cluster-');
    const init = await runHush([
      'operator',
      'init',
      '--seal',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--json',
      '--database-url',
      db.url,
      '--data-dir',
      join(dir, 'init'),
    ]);
    assert.equal(init.code, 0, init.stderr);
    const { rootToken, shares } = JSON.parse(init.stdout);
    const nodes: Listening[] = [];
    t.after(async () => {
      for (const n of nodes) await n.kill9();
    });
    for (const name of ['a', 'b'])
      nodes.push(await spawnServer(['--database-url', db.url, '--data-dir', join(dir, name), '--listen', '127.0.0.1:0']));
    const [A, B] = nodes;
    const unseal = async (n: Listening, s: string[]) => {
      for (const share of s) assert.equal((await call(n.url, 'POST', '/v1/sys/unseal', { share })).status, 200);
    };

    await unseal(A, shares.slice(0, 2));
    assert.equal((await call(A.url, 'GET', '/v1/sys/health')).status, 200);
    assert.equal((await call(B.url, 'GET', '/v1/sys/health')).status, 503, 'B is unsealed on its own');
    await unseal(B, shares.slice(1, 3));
    assert.equal((await call(B.url, 'GET', '/v1/projects', undefined, rootToken)).status, 200);

    // operator seal: this node only.
    const one = await runHush(['operator', 'seal', '--addr', A.url], { env: { HUSH_TOKEN: rootToken } });
    assert.equal(one.code, 0, one.stderr);
    assert.equal((await call(A.url, 'GET', '/v1/projects', undefined, rootToken)).status, 503);
    assert.equal((await call(B.url, 'GET', '/v1/projects', undefined, rootToken)).status, 200, 'a plain seal leaves the other node open');

    // seal --all through B reaches A (already sealed) and B at once, and any other node within the poll bound.
    await unseal(A, shares.slice(0, 2));
    const all = await runHush(['operator', 'seal', '--all', '--json', '--addr', B.url], { env: { HUSH_TOKEN: rootToken } });
    assert.equal(all.code, 0, all.stderr);
    assert.equal(JSON.parse(all.stdout).all, true);
    assert.equal((await call(B.url, 'GET', '/v1/projects', undefined, rootToken)).status, 503);
    const t0 = Date.now();
    await waitFor(async () => (await call(A.url, 'GET', '/v1/sys/health')).status === 503, 'A seals itself after seal --all', 10_000);
    t.diagnostic(`A sealed itself ${Date.now() - t0} ms after seal --all returned`);
    assert.equal((await call(A.url, 'GET', '/v1/projects', undefined, rootToken)).body.error.code, 'sealed');

    // Unsealed again, a node stays open (the generation it saw is the current one).
    await unseal(A, shares.slice(0, 2));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await call(A.url, 'GET', '/v1/projects', undefined, rootToken)).status, 200);
    const ev = await call(A.url, 'GET', '/v1/audit?action=vault.seal&limit=50', undefined, rootToken);
    assert.ok(ev.body.events.length >= 3, ev.text);
    assert.equal((await call(A.url, 'GET', '/v1/audit/verify', undefined, rootToken)).body.ok, true);
  });
});

describe('operator init --pgp-keys: each share encrypted to one GnuPG key', { skip: GPG_SKIP }, () => {
  it('gpg --decrypt opens each share for its holder only, and 2 decrypted shares unseal', async (t) => {
    const homes = await Promise.all([0, 1, 2].map(() => createGpgHome('hush-share-gpg-')));
    t.after(async () => {
      for (const h of homes) await h.cleanup();
    });
    const keys = [
      await generateEd25519Key(homes[0], 'Alice <alice@example.com>'),
      await generateRsaKey(homes[1], 'Bob <bob@example.com>', { bits: 2048 }),
      await generateEd25519Key(homes[2], 'Carol <carol@example.com>'),
    ];
    const dir = tmp('hush-seal-pgp-');
    const files = await Promise.all(
      keys.map(async (k, i) => {
        const f = join(dir, `k${i}.asc`);
        writeFileSync(f, await exportPublicKey(k));
        return f;
      }),
    );

    const wrongCount = await runHush([
      'operator',
      'init',
      '--seal',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--pgp-keys',
      files.slice(0, 2).join(','),
      '--data-dir',
      join(dir, 'nope'),
    ]);
    assert.equal(wrongCount.code, 2);
    assert.match(wrongCount.stderr, /one key per share/);

    const twice = await runHush([
      'operator',
      'init',
      '--seal',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--pgp-keys',
      [files[0], files[1], files[0]].join(','),
      '--data-dir',
      join(dir, 'nope'),
    ]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /twice/);
    const init = await runHush([
      'operator',
      'init',
      '--seal',
      'shamir',
      '--shares',
      '3',
      '--threshold',
      '2',
      '--pgp-keys',
      files.join(','),
      '--json',
      '--data-dir',
      join(dir, 'data'),
    ]);
    assert.equal(init.code, 0, init.stderr);
    const out = JSON.parse(init.stdout);
    assert.equal(out.shares.length, 3);
    assert.deepEqual(
      out.shareKeys,
      keys.map((k) => k.fingerprint),
    );
    assert.ok(out.shares.every((s: string) => s.startsWith('-----BEGIN PGP MESSAGE-----') && !s.includes('hush-share-')));

    const plain: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = join(dir, `share${i}.asc`);
      writeFileSync(f, out.shares[i]);
      const mine = await gpgDecrypt(homes[i], f);
      assert.equal(mine.code, 0, mine.stderr);
      plain.push(mine.stdout.toString('utf8'));
      assert.match(plain[i], /^hush-share-[A-Za-z0-9_-]+$/);
      const notMine = await gpgDecrypt(homes[(i + 1) % 3], f, { allowFail: true });
      assert.notEqual(notMine.code, 0, 'another holder cannot open the share');
    }
    const s = await spawnServer(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    t.after(() => s.kill9());
    const shareFiles = [2, 0].map((i) => {
      const f = join(dir, `plain${i}`);
      writeFileSync(f, plain[i], { mode: 0o600 });
      return f;
    });
    const u = await runHush(['operator', 'unseal', '--addr', s.url, ...shareFiles.flatMap((f) => ['--share-file', f])]);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /Unsealed/);
    assert.equal((await call(s.url, 'GET', '/v1/projects', undefined, out.rootToken)).status, 200);
  });
});

/**
 * `hush backup create|verify|restore` as a real process: create goes
 * through the SDK to a live server; verify and restore work on local files;
 * `hush server` starts at once on a restored data dir and old tokens read.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from 'openpgp';
import { runHush, spawnServer, waitExit } from '../helpers/cli.js';
import { startServer, tempDir, type TestServer } from '../helpers/server.js';
import {
  createGpgHome,
  exportPublicKey,
  exportSecretKey,
  generateEd25519Key,
  generateRsaKey,
  GPG_SKIP,
  gpgDecrypt,
  type GpgHome,
} from '../helpers/gpg.js';
import { listTree, seedVault, type Seeded } from './support.js';

describe('hush backup (CLI)', () => {
  let s: TestServer;
  let seeded: Seeded;
  const work = tempDir('hush-bk-cli-');
  const passFile = join(work, 'pass.txt');
  let env: NodeJS.ProcessEnv;
  let home: GpgHome | null = null;

  before(async () => {
    writeFileSync(passFile, 'cli backup passphrase\n', { mode: 0o600 });
    s = await startServer();
    seeded = await seedVault(s, { projects: 2, envs: 2, secrets: 50 });
    const bot = await s.api('POST', '/v1/tokens', { name: 'bot', scopes: ['backup'] });
    env = { HUSH_ADDR: s.url, HUSH_TOKEN: bot.body.token };
  });
  after(async () => {
    await s?.close();
    await home?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  it('create --passphrase-file --out --json writes a 0600 file atomically and prints {file, bytes, counts}', async () => {
    const out = join(work, 'out', 'a.pgp');
    const r = await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.file, out);
    assert.equal(j.bytes, statSync(out).size);
    assert.equal(j.counts.secrets, 200);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(work, 'out')), ['a.pgp'], 'no temp file left');
    assert.equal(r.stderr, '', 'no progress output when stderr is not a TTY');
  });

  it('create refuses to replace an existing file without --force, and needs a recipient or a passphrase (exit 2)', async () => {
    const out = join(work, 'exists.pgp');
    writeFileSync(out, 'keep me');
    const r = await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    const forced = await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out, '--force'], { env });
    assert.equal(forced.code, 0, forced.stderr);
    const none = await runHush(['backup', 'create', '--out', join(work, 'none.pgp')], { env });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /--recipient|--passphrase-file/);
  });

  it('create with a token lacking the backup grant fails with the auth exit code and writes nothing', async () => {
    const t = await s.api('POST', '/v1/tokens', { name: 'reader2', scopes: ['read:p0/e0'] });
    const out = join(work, 'denied.pgp');
    const r = await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out], {
      env: { ...env, HUSH_TOKEN: t.body.token },
    });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    assert.ok(!listTree(work).includes('denied.pgp'));
  });

  it(
    'create to gpg keys with --sign-key; gpg decrypts it; verify --identity --signer checks the signature',
    { skip: GPG_SKIP },
    async () => {
      home = await createGpgHome('hbc-');
      const [enc, signer] = await Promise.all([
        generateEd25519Key(home, 'Ops <ops@example.com>', { passphrase: 'id pass' }),
        generateRsaKey(home, 'Signer <s@example.com>', { passphrase: 'sign pass', bits: 3072 }),
      ]);
      const files = {
        pub: join(work, 'ops.asc'),
        sec: join(work, 'ops.sec.asc'),
        idPass: join(work, 'id.pass'),
        signSec: join(work, 'signer.sec.asc'),
        signPass: join(work, 'sign.pass'),
        signPub: join(work, 'signer.asc'),
      };
      writeFileSync(files.pub, await exportPublicKey(enc));
      writeFileSync(files.sec, await exportSecretKey(enc), { mode: 0o600 });
      writeFileSync(files.idPass, 'id pass\n', { mode: 0o600 });
      writeFileSync(files.signSec, await exportSecretKey(signer), { mode: 0o600 });
      writeFileSync(files.signPass, 'sign pass\n', { mode: 0o600 });
      writeFileSync(files.signPub, await exportPublicKey(signer));
      const out = join(work, 'signed.pgp');
      const c = await runHush(
        ['backup', 'create', '--recipient', files.pub, '--sign-key', files.signSec, '--sign-passphrase-file', files.signPass, '--out', out],
        { env },
      );
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /Backup written to/);
      const g = await gpgDecrypt(home, out, { keyPassphrase: 'id pass' });
      assert.ok(
        g.status.some((l) => l.startsWith('GOODSIG ')),
        g.stderr,
      );
      assert.equal(JSON.parse(g.stdout.toString('utf8').split('\n')[0]).type, 'hush-backup');

      const v = await runHush([
        'backup',
        'verify',
        out,
        '--identity',
        files.sec,
        '--identity-passphrase-file',
        files.idPass,
        '--signer',
        files.signPub,
        '--json',
      ]);
      assert.equal(v.code, 0, v.stderr);
      const j = JSON.parse(v.stdout);
      assert.equal(j.ok, true);
      assert.equal(j.counts.secrets, 200);
      assert.equal(j.signature.verifiedBy, signer.fingerprint);
      const wrongSigner = await runHush([
        'backup',
        'verify',
        out,
        '--identity',
        files.sec,
        '--identity-passphrase-file',
        files.idPass,
        '--signer',
        files.pub,
      ]);
      assert.notEqual(wrongSigner.code, 0);
      assert.match(wrongSigner.stderr, /backup_signature_invalid/);
      const noPass = await runHush(['backup', 'verify', out, '--identity', files.sec]);
      assert.notEqual(noPass.code, 0);
      assert.match(noPass.stderr, /backup_key_invalid/);
    },
  );

  it('verify prints the counts (exit 0) and refuses a truncated or wrong-passphrase file with one line naming the code', async () => {
    const out = join(work, 'v.pgp');
    assert.equal((await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out], { env })).code, 0);
    const ok = await runHush(['backup', 'verify', out, '--passphrase-file', passFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^OK: /);
    assert.match(ok.stdout, /2 projects, 5 environments, 200 secrets, \d+ versions/);
    const cut = join(work, 'cut.pgp');
    writeFileSync(cut, readFileSync(out).subarray(0, Math.floor(statSync(out).size * 0.7)));
    const bad = await runHush(['backup', 'verify', cut, '--passphrase-file', passFile]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.match(bad.stderr, /^hush: .*\(backup_corrupt\)$/m);
    const wrongPass = join(work, 'wrong.txt');
    writeFileSync(wrongPass, 'nope\n');
    const wrong = await runHush(['backup', 'verify', out, '--passphrase-file', wrongPass]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /backup_decrypt_failed/);
    // A passphrase-only backup given a private key: a decryption failure that says so (it was backup_corrupt).
    const { privateKey } = await generateKey({ userIDs: [{ name: 'Ops' }], type: 'curve25519', format: 'armored' });
    const idFile = join(work, 'unrelated.sec.asc');
    writeFileSync(idFile, privateKey, { mode: 0o600 });
    const withKey = await runHush(['backup', 'verify', out, '--identity', idFile]);
    assert.equal(withKey.code, 1, withKey.stderr);
    assert.equal(withKey.stderr.trim().split('\n').length, 1, withKey.stderr);
    assert.match(withKey.stderr, /encrypted with a passphrase only.*\(backup_decrypt_failed\)$/m);
  });

  it('restore into a fresh data dir prints where master.key went; hush server starts on it at once and an old token reads', async () => {
    const out = join(work, 'r.pgp');
    assert.equal((await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out], { env })).code, 0);
    const dir = join(work, 'restored');
    const r = await runHush(['backup', 'restore', out, '--passphrase-file', passFile, '--data-dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`New master key written to ${join(dir, 'master.key')}`));
    assert.match(r.stdout, new RegExp(`hush server --data-dir ${dir}`));
    assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);

    const again = await runHush(['backup', 'restore', out, '--passphrase-file', passFile, '--data-dir', dir]);
    assert.equal(again.code, 6, 'a non-empty target is a conflict');
    assert.match(again.stderr, /restore_target_not_empty/);

    const srv = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0'], { HUSH_LOG_LEVEL: 'warn' });
    try {
      assert.equal(srv.rootToken, null, 'no new vault was initialised');
      const res = await fetch(`${srv.url}/v1/projects/p0/envs/e0/secrets`, { headers: { authorization: `Bearer ${seeded.child.token}` } });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { secrets: Record<string, string> };
      assert.deepEqual(Object.entries(body.secrets).sort(), [...seeded.values.get('p0/e0')!].sort());
    } finally {
      srv.child.kill('SIGTERM');
      await waitExit(srv.child);
    }
  });

  it('restore of a bad file creates nothing in the target and exits non-zero', async () => {
    const out = join(work, 'r2.pgp');
    assert.equal((await runHush(['backup', 'create', '--passphrase-file', passFile, '--out', out], { env })).code, 0);
    const flipped = join(work, 'flipped.pgp');
    const b = readFileSync(out);
    b[Math.floor(b.length / 2)] ^= 0x10;
    writeFileSync(flipped, b);
    const dir = join(work, 'never');
    const r = await runHush(['backup', 'restore', flipped, '--passphrase-file', passFile, '--data-dir', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /backup_corrupt/);
    assert.deepEqual(listTree(dir), []);
    const noTarget = await runHush(['backup', 'restore', out, '--passphrase-file', passFile]);
    assert.equal(noTarget.code, 2);
    assert.match(noTarget.stderr, /--data-dir/);
  });
});

/**
 * Bad backups and bad targets: each gives its documented error code and
 * leaves the restore target untouched (no files in a fresh data dir; an
 * existing vault or PostgreSQL database unchanged).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../vault/config.js';
import { createLogger } from '../../vault/server.js';
import { restoreBackupFile, verifyBackupFile } from '../../vault/backup/local.js';
import { encryptBackupStream } from '../../vault/backup/pgp.js';
import { createHash } from 'node:crypto';
import { freshPgDatabase, startServer, tempDir, type TestServer, NEEDS_PG } from '../helpers/server.js';
import { createGpgHome, exportPublicKey, exportSecretKey, generateEd25519Key, GPG_SKIP, type GpgHome } from '../helpers/gpg.js';
import { backupFileLines, backupOverHttp, listTree, seedVault, storedDump } from './support.js';

const PASS = 'the right passphrase';
const silent = createLogger('silent');

/** Re-encrypts NDJSON lines (header first) with the passphrase: a well-encrypted backup with whatever content the test wants. */
async function forge(file: string, lines: string[]): Promise<void> {
  const cipher = await encryptBackupStream(Readable.from([Buffer.from(lines.join('\n') + '\n')]), { passphrase: PASS });
  const parts: Buffer[] = [];
  for await (const c of cipher) parts.push(c as Buffer);
  writeFileSync(file, Buffer.concat(parts));
}

/** Rewrites the hash (format 5: the end line's) and the counts to match a (modified) body, so only deeper checks can catch the change. */
function rehash(lines: string[]): string[] {
  const header = JSON.parse(lines[0]);
  const withEnd = JSON.parse(lines[lines.length - 1]).t === 'end';
  const body = lines.slice(1, withEnd ? -1 : undefined);
  const sha = createHash('sha256')
    .update(body.map((l) => l + '\n').join(''))
    .digest('hex');
  if (!withEnd) header.bodySha256 = sha;
  const counts = { projects: 0, envs: 0, secrets: 0, versions: 0, tokens: 0, audit: 0 } as Record<string, number>;
  const key: Record<string, string> = {
    project: 'projects',
    env: 'envs',
    secret: 'secrets',
    version: 'versions',
    token: 'tokens',
    audit: 'audit',
  };
  for (const l of body) {
    const k = key[JSON.parse(l).t];
    if (k) counts[k]++;
  }
  header.counts = counts;
  return [JSON.stringify(header), ...body, ...(withEnd ? [JSON.stringify({ t: 'end', bodySha256: sha })] : [])];
}

describe('bad backups and bad targets', () => {
  let s: TestServer;
  const work = tempDir('hush-bk-neg-');
  const good = join(work, 'good.pgp');
  let lines: string[];
  let home: GpgHome | null = null;
  let keyed: { file: string; pub: string; secret: string; wrongSecret: string; passphrase: string } | null = null;

  before(async () => {
    s = await startServer();
    await seedVault(s, { projects: 1, envs: 2, secrets: 100 });
    assert.equal((await backupOverHttp(s, good, { passphrase: PASS })).status, 200);
    lines = await backupFileLines(good, { passphrase: PASS });
    if (!GPG_SKIP) {
      home = await createGpgHome('hbn-');
      // One after the other: two key generations at once in one GNUPGHOME contend for its keyring lock, and
      // a retried generation can then find its key already made ("A key for ... already exists").
      const k = await generateEd25519Key(home, 'Right <r@example.com>');
      const wrong = await generateEd25519Key(home, 'Wrong <w@example.com>');
      const file = join(work, 'keyed.pgp');
      const pub = await exportPublicKey(k);
      assert.equal((await backupOverHttp(s, file, { recipients: [pub] })).status, 200);
      keyed = { file, pub, secret: await exportSecretKey(k), wrongSecret: await exportSecretKey(wrong), passphrase: '' };
    }
  });
  after(async () => {
    await s?.close();
    await home?.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  /** A restore of `file` into a fresh data dir fails with `code` and creates nothing there; verify fails the same way. */
  async function assertRefused(file: string, keys: Parameters<typeof verifyBackupFile>[1], code: string): Promise<void> {
    await assert.rejects(verifyBackupFile(file, keys), (e: any) => {
      assert.equal(e.code, code, e.message);
      return true;
    });
    const dir = join(work, `target-${Math.random().toString(36).slice(2)}`);
    await assert.rejects(restoreBackupFile(loadConfig({ 'data-dir': dir }, {}), file, keys, silent), (e: any) => {
      assert.equal(e.code, code, e.message);
      return true;
    });
    assert.deepEqual(listTree(dir), [], 'nothing created in the target data dir');
  }

  const copyWith = (name: string, edit: (b: Buffer) => Buffer) => {
    const f = join(work, name);
    writeFileSync(f, edit(readFileSync(good)));
    return f;
  };

  it('the intact backup verifies (control)', async () => {
    const r = await verifyBackupFile(good, { passphrase: PASS });
    assert.equal(r.ok, true);
  });

  it('a truncated file: backup_corrupt', async () => {
    for (const frac of [0.5, 0.98]) {
      const f = copyWith(`trunc-${frac}.pgp`, (b) => b.subarray(0, Math.floor(b.length * frac)));
      await assertRefused(f, { passphrase: PASS }, 'backup_corrupt');
    }
    const cut = copyWith('trunc-tail.pgp', (b) => b.subarray(0, b.length - 5));
    await assertRefused(cut, { passphrase: PASS }, 'backup_corrupt');
  });

  it('a flipped byte (middle, or in the integrity trailer): backup_corrupt', async () => {
    for (const at of [0.5, 0.75]) {
      const f = copyWith(`flip-${at}.pgp`, (b) => {
        const c = Buffer.from(b);
        const i = Math.floor(c.length * at);
        c[i] ^= 0x01;
        return c;
      });
      await assertRefused(f, { passphrase: PASS }, 'backup_corrupt');
    }
    const tail = copyWith('flip-mdc.pgp', (b) => {
      const c = Buffer.from(b);
      c[c.length - 3] ^= 0x80;
      return c;
    });
    await assertRefused(tail, { passphrase: PASS }, 'backup_corrupt');
  });

  it('an empty file and a file that is not OpenPGP: backup_corrupt', async () => {
    const empty = join(work, 'empty.pgp');
    writeFileSync(empty, '');
    await assertRefused(empty, { passphrase: PASS }, 'backup_corrupt');
    const text = join(work, 'text.pgp');
    writeFileSync(text, lines.join('\n'));
    await assertRefused(text, { passphrase: PASS }, 'backup_corrupt');
  });

  it('a wrong passphrase: backup_decrypt_failed', async () => {
    await assertRefused(good, { passphrase: 'not the passphrase' }, 'backup_decrypt_failed');
  });

  it('a wrong key: backup_decrypt_failed', { skip: GPG_SKIP }, async () => {
    await assertRefused(keyed!.file, { identities: [{ armored: keyed!.wrongSecret }] }, 'backup_decrypt_failed');
    const ok = await verifyBackupFile(keyed!.file, { identities: [{ armored: keyed!.secret }] });
    assert.equal(ok.ok, true, 'and the right key opens it (control)');
  });

  it('an unsigned backup when a signer is required: backup_signature_invalid', { skip: GPG_SKIP }, async () => {
    await assertRefused(good, { passphrase: PASS, verifyKeys: [keyed!.pub] }, 'backup_signature_invalid');
  });

  it(
    'format 5: the end line cut off (a cut at' +
      ' a line boundary), lines missing before' +
      (' it, a line after it, a wrong end hash,' + ' a hash in the header: backup_corrupt'),
    async () => {
      assert.equal(JSON.parse(lines.at(-1)!).t, 'end', 'the end line closes the backup');
      const end = JSON.parse(lines.at(-1)!);
      const cases: [string, string[], RegExp][] = [
        ['no-end', lines.slice(0, -1), /ends before its end line/],
        ['cut-body', [...lines.slice(0, -3), lines.at(-1)!], /does not match the SHA-256 in its end line/],
        ['after-end', [...lines, lines.at(-2)!], /after the end line/],
        [
          'bad-end',
          [...lines.slice(0, -1), JSON.stringify({ t: 'end', bodySha256: '0'.repeat(64) })],
          /does not match the SHA-256 in its end line/,
        ],
        [
          'header-hash',
          [JSON.stringify({ ...JSON.parse(lines[0]), bodySha256: end.bodySha256 }), ...lines.slice(1)],
          /format 5 header has no body hash/,
        ],
      ];
      for (const [name, content, why] of cases) {
        const f = join(work, `f5-${name}.pgp`);
        await forge(f, content);
        await assert.rejects(
          verifyBackupFile(f, { passphrase: PASS }),
          (e: any) => e.code === 'backup_corrupt' && why.test(e.message),
          name,
        );
        await assertRefused(f, { passphrase: PASS }, 'backup_corrupt');
      }
    },
  );

  it('well-encrypted but altered content (value changed, audit event altered, orphan version, not a Hush backup): backup_corrupt', async () => {
    const vIdx = lines.findIndex((l) => JSON.parse(l).t === 'version' && JSON.parse(l).value);
    const changed = [...lines];
    changed[vIdx] = changed[vIdx].replace(/"value":"./, '"value":"X');
    await forge(join(work, 'value.pgp'), changed);
    await assertRefused(join(work, 'value.pgp'), { passphrase: PASS }, 'backup_corrupt');

    const aIdx = lines.findIndex((l) => JSON.parse(l).t === 'audit' && JSON.parse(l).seq === 3);
    const audit = [...lines];
    audit[aIdx] = audit[aIdx].replace(/"outcome":"ok"/, '"outcome":"error"');
    assert.notEqual(audit[aIdx], lines[aIdx]);
    await forge(join(work, 'audit.pgp'), rehash(audit));
    await assertRefused(join(work, 'audit.pgp'), { passphrase: PASS }, 'backup_corrupt');

    const orphan = [...lines];
    const v = JSON.parse(orphan[vIdx]);
    v.name = 'NO_SUCH_SECRET';
    orphan[vIdx] = JSON.stringify(v);
    await forge(join(work, 'orphan.pgp'), rehash(orphan));
    await assertRefused(join(work, 'orphan.pgp'), { passphrase: PASS }, 'backup_corrupt');

    await forge(join(work, 'foreign.pgp'), ['{"hello":"world"}']);
    await assertRefused(join(work, 'foreign.pgp'), { passphrase: PASS }, 'backup_corrupt');
  });

  it('an audit event whose text reads otherwise than the value it MACs (a repeated key, a respelled number): backup_corrupt', async () => {
    const aIdx = lines.findIndex((l) => JSON.parse(l).t === 'audit' && /"target":\{"key":"[^"]*","version":\d+/.test(l));
    assert.ok(aIdx > 0, 'an audit event whose target names a key and a version');
    const dup = [...lines];
    dup[aIdx] = dup[aIdx].replace('"target":{"key":', '"target":{"key":"FAKE_NAME","key":');
    await forge(join(work, 'dup-key.pgp'), rehash(dup));
    await assertRefused(join(work, 'dup-key.pgp'), { passphrase: PASS }, 'backup_corrupt');
    const num = [...lines];
    num[aIdx] = num[aIdx].replace(/("target":\{"key":"[^"]*","version":)(\d+)/, '$1$2.0000000000000001');
    assert.deepEqual(JSON.parse(num[aIdx]), JSON.parse(lines[aIdx]), 'the same value once parsed');
    await forge(join(work, 'num.pgp'), rehash(num));
    await assertRefused(join(work, 'num.pgp'), { passphrase: PASS }, 'backup_corrupt');
  });

  // Issue 21: a symlink planted at the target's hush.db made the restore write its database elsewhere (mode 0644).
  for (const kind of ['dangling', 'to an empty file elsewhere'] as const) {
    it(`a symbolic link at the target's hush.db (${kind}): restore_target_unsafe, nothing written through it`, async () => {
      const dir = join(work, `link-${kind === 'dangling' ? 'dangling' : 'empty'}`);
      const elsewhere = join(work, `elsewhere-${kind === 'dangling' ? 'dangling' : 'empty'}.db`);
      mkdirSync(dir, { mode: 0o700 });
      if (kind !== 'dangling') writeFileSync(elsewhere, '');
      symlinkSync(elsewhere, join(dir, 'hush.db'));
      await assert.rejects(restoreBackupFile(loadConfig({ 'data-dir': dir }, {}), good, { passphrase: PASS }, silent), {
        code: 'restore_target_unsafe',
      });
      assert.equal(existsSync(elsewhere), kind !== 'dangling', 'no file created through the link');
      if (kind !== 'dangling') assert.equal(statSync(elsewhere).size, 0, 'the file the link points to is untouched');
      assert.deepEqual(readdirSync(dir), ['hush.db'], 'nothing else created in the target');
      assert.ok(lstatSync(join(dir, 'hush.db')).isSymbolicLink());
    });
  }

  it("a link at the target's journal or master.key is refused too; a fresh target gets hush.db and master.key of mode 0600", async () => {
    for (const name of ['hush.db-wal', 'master.key']) {
      const dir = join(work, `link-${name}`);
      mkdirSync(dir, { mode: 0o700 });
      symlinkSync(join(work, `nowhere-${name}`), join(dir, name));
      await assert.rejects(restoreBackupFile(loadConfig({ 'data-dir': dir }, {}), good, { passphrase: PASS }, silent), {
        code: 'restore_target_unsafe',
      });
      assert.equal(existsSync(join(work, `nowhere-${name}`)), false);
    }
    const dir = join(work, 'fresh-modes');
    const r = await restoreBackupFile(loadConfig({ 'data-dir': dir }, {}), good, { passphrase: PASS }, silent);
    assert.equal(r.verified, true);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  });

  // Outside review of issue 21: an empty hush.db hard-linked to a file elsewhere was written into, and kept its 0644.
  it('an empty hush.db with another hard link is refused; an empty one of its own is restored into at mode 0600', async () => {
    const dir = join(work, 'hardlink');
    const elsewhere = join(work, 'hardlink-elsewhere.db');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(elsewhere, '', { mode: 0o644 });
    linkSync(elsewhere, join(dir, 'hush.db'));
    await assert.rejects(restoreBackupFile(loadConfig({ 'data-dir': dir }, {}), good, { passphrase: PASS }, silent), {
      code: 'restore_target_unsafe',
    });
    assert.equal(statSync(elsewhere).size, 0, 'nothing written through the hard link');
    const own = join(work, 'empty-own');
    mkdirSync(own, { mode: 0o700 });
    writeFileSync(join(own, 'hush.db'), '', { mode: 0o644 });
    chmodSync(join(own, 'hush.db'), 0o644);
    const r = await restoreBackupFile(loadConfig({ 'data-dir': own }, {}), good, { passphrase: PASS }, silent);
    assert.equal(r.verified, true);
    assert.equal(statSync(join(own, 'hush.db')).mode & 0o777, 0o600);
  });

  it('a non-empty target: restore_target_not_empty, and the vault there is unchanged', async () => {
    const dir = join(work, 'occupied');
    const other = await startServer({ dataDir: dir });
    await seedVault(other, { projects: 1, envs: 1, secrets: 3 });
    await other.close();
    const cfg = loadConfig({ 'data-dir': dir }, {});
    const before = { tree: listTree(dir), dump: await storedDump(cfg), mtime: statSync(join(dir, 'hush.db')).mtimeMs };
    await assert.rejects(restoreBackupFile(cfg, good, { passphrase: PASS }, silent), { code: 'restore_target_not_empty' });
    assert.deepEqual(listTree(dir), before.tree);
    assert.deepEqual(await storedDump(cfg), before.dump);
    assert.equal(statSync(join(dir, 'hush.db')).mtimeMs, before.mtime);
  });

  it('a file that goes bad between the verify pass and the restore pass: nothing is left in the target', async () => {
    const f = copyWith('changing.pgp', (b) => b);
    const dir = join(work, 'half');
    const cfg = loadConfig({ 'data-dir': dir }, {});
    await assert.rejects(
      restoreBackupFile(cfg, f, { passphrase: PASS }, silent, (phase) => {
        if (phase === 'restore') truncateSync(f, Math.floor(statSync(f).size * 0.9));
      }),
      { code: 'backup_corrupt' },
    );
    assert.deepEqual(listTree(dir), [], 'data dir, database and master.key are all gone again');
  });

  describe('PostgreSQL targets', NEEDS_PG, () => {
    async function tables(url: string): Promise<string[]> {
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(`select table_name from information_schema.tables where table_schema = 'public' order by 1`)).rows.map(
          (r) => r.table_name,
        );
      } finally {
        await c.end();
      }
    }

    it('a wrong passphrase or a file that goes bad mid-restore leaves an empty database empty (no tables)', async () => {
      const db = (await freshPgDatabase())!;
      const dir = join(work, 'pg-key');
      try {
        const cfg = loadConfig({ 'data-dir': dir, 'database-url': db.url }, {});
        await assert.rejects(restoreBackupFile(cfg, good, { passphrase: 'wrong' }, silent), { code: 'backup_decrypt_failed' });
        assert.deepEqual(await tables(db.url), []);
        const f = copyWith('changing-pg.pgp', (b) => b);
        await assert.rejects(
          restoreBackupFile(cfg, f, { passphrase: PASS }, silent, (phase) => {
            if (phase === 'restore') truncateSync(f, Math.floor(statSync(f).size * 0.9));
          }),
          { code: 'backup_corrupt' },
        );
        assert.deepEqual(await tables(db.url), [], 'the migrations are rolled back too');
        assert.deepEqual(listTree(dir), [], 'no master.key left behind');
        const ok = await restoreBackupFile(cfg, good, { passphrase: PASS }, silent);
        assert.equal(ok.verified, true, 'and the same database takes a good restore afterwards');
      } finally {
        await db.drop();
      }
    });

    it('a non-empty PostgreSQL target: restore_target_not_empty, database unchanged', async () => {
      const db = (await freshPgDatabase())!;
      try {
        const other = await startServer({ settings: { 'database-url': db.url } });
        await seedVault(other, { projects: 1, envs: 1, secrets: 3 });
        await other.close({ keepDir: true });
        const cfg = loadConfig({ 'data-dir': other.dataDir, 'database-url': db.url }, {});
        const before = await storedDump(cfg);
        await assert.rejects(restoreBackupFile(cfg, good, { passphrase: PASS }, silent), { code: 'restore_target_not_empty' });
        assert.deepEqual(await storedDump(cfg), before);
        rmSync(other.dataDir, { recursive: true, force: true });
      } finally {
        await db.drop();
      }
    });
  });
});

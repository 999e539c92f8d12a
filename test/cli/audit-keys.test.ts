import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HUSH_BIN } from '../helpers/cli.js';
import { startServer } from '../helpers/server.js';
import { oneErrorLine, rootCli, writeFile } from './helpers.js';

const require = createRequire(import.meta.url);

describe('hush audit', () => {
  it('list shows events as a table and as JSON, with filters', async () => {
    const s = await startServer();
    try {
      const u = rootCli(s.url, s.rootToken);
      await u.json(['projects', 'create', 'api']);
      await u.json(['envs', 'create', 'prod', '-p', 'api']);
      await u.run(['secrets', 'set', 'A', '-p', 'api', '-e', 'prod'], { input: 'not-in-the-log' });
      const all = await u.json(['audit', 'list']);
      assert.ok(all.length >= 3);
      assert.deepEqual(
        all.map((e: { seq: number }) => e.seq),
        [...all.map((e: { seq: number }) => e.seq)].sort((a, b) => a - b),
      );
      assert.ok(all.some((e: { action: string }) => e.action === 'secret.write'));
      assert.doesNotMatch(JSON.stringify(all), /not-in-the-log/);
      const only = await u.json(['audit', 'list', '--action', 'env.create', '-p', 'api']);
      assert.deepEqual(
        only.map((e: { action: string; project: string }) => [e.action, e.project]),
        [['env.create', 'api']],
      );
      const last = await u.json(['audit', 'list', '-n', '2']);
      assert.deepEqual(
        last.map((e: { seq: number }) => e.seq),
        all.slice(-2).map((e: { seq: number }) => e.seq),
      );
      const table = await u.run(['audit', 'list']);
      assert.match(table.stdout, /^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME\s+IP\n/);
      assert.match(table.stdout, /root\s+secret\.write\s+api\/prod key=A version=1\s+ok/);
    } finally {
      await s.close();
    }
  });

  it('list --follow prints new events as they happen (JSON: one per line)', async () => {
    const s = await startServer();
    const child = spawn(process.execPath, [HUSH_BIN, 'audit', 'list', '--follow', '--json', '-n', '1', '--interval', '150'], {
      env: { PATH: process.env.PATH, HOME: '/nonexistent', HUSH_ADDR: s.url, HUSH_TOKEN: s.rootToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      const lines = () =>
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
      const waitFor = (pred: () => boolean) =>
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`timed out; got: ${out}`)), 10_000);
          const check = () => {
            if (pred()) {
              clearTimeout(t);
              child.stdout.off('data', check);
              resolve();
            }
          };
          child.stdout.on('data', check);
          check();
        });
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d) => {
        out += d;
      });
      await s.api('POST', '/v1/projects', { name: 'before' });
      await waitFor(() => lines().length >= 1);
      await s.api('POST', '/v1/projects', { name: 'followed' });
      await waitFor(() =>
        lines().some((e) => (e.action === 'project.create' && e.target?.name === 'followed') || JSON.stringify(e).includes('followed')),
      );
      const seqs = lines().map((e) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
    } finally {
      child.kill('SIGTERM');
      await s.close();
    }
  });

  it('verify exits 0 on an intact chain, and 3 naming the first bad seq after the DB file is tampered ' + 'with', async () => {
    const s = await startServer();
    const u = rootCli(s.url, s.rootToken);
    for (const p of ['a1', 'a2', 'a3', 'a4']) await u.json(['projects', 'create', p]);
    const ok = await u.run(['audit', 'verify']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^Audit chain intact: \d+ events checked, head seq \d+\.\n$/);
    assert.equal((await u.json(['audit', 'verify'])).ok, true);
    await s.close({ keepDir: true });

    const Database = require('better-sqlite3');
    const db = new Database(join(s.dataDir, 'hush.db'));
    const changed = db.prepare('UPDATE audit_events SET target = \'{"name":"evil"}\' WHERE seq = 3').run().changes;
    db.close();
    assert.equal(changed, 1);

    const s2 = await startServer({ dataDir: s.dataDir });
    try {
      const u2 = rootCli(s2.url, s.rootToken);
      const bad = await u2.run(['audit', 'verify']);
      assert.equal(bad.code, 3);
      assert.match(oneErrorLine(bad.stderr), /^hush: audit chain broken at seq 3\b/);
      const j = await u2.run(['audit', 'verify', '--json']);
      assert.equal(j.code, 3);
      assert.equal(JSON.parse(j.stdout).firstBadSeq, 3);
    } finally {
      await s2.close();
    }
  });
});

describe('hush audit verify --anchor-seq/--anchor-hash', () => {
  it('an anchor kept outside the database catches a tail deleted together with the chain head', async () => {
    const s = await startServer();
    let before: { ok: boolean; headSeq: number; headHash: string };
    let anchor: string[];
    try {
      const u = rootCli(s.url, s.rootToken);
      for (const p of ['b1', 'b2', 'b3', 'b4', 'b5']) await u.json(['projects', 'create', p]);
      before = await u.json(['audit', 'verify']);
      assert.equal(before.ok, true);
      anchor = ['--anchor-seq', String(before.headSeq), '--anchor-hash', before.headHash];
      assert.equal((await u.run(['audit', 'verify', ...anchor])).code, 0);
      for (const bad of [
        ['--anchor-seq', '3'],
        ['--anchor-seq', '0', '--anchor-hash', before.headHash],
        ['--anchor-seq', '3', '--anchor-hash', 'xyz'],
      ]) {
        const r = await u.run(['audit', 'verify', ...bad]);
        assert.equal(r.code, 2, r.stderr);
        assert.match(oneErrorLine(r.stderr), /^hush: .*anchor/);
      }
    } finally {
      await s.close({ keepDir: true });
    }

    // Someone with write access deletes the last two events, rewinds their
    // stream's head to match, and deletes the checkpoints (the one written at
    // shutdown would otherwise give the truncation away).
    const Database = require('better-sqlite3');
    const db = new Database(join(s.dataDir, 'hush.db'));
    const keep = before.headSeq - 2;
    db.prepare('DELETE FROM audit_events WHERE seq > ?').run(keep);
    const h = db.prepare('SELECT hash, stream, stream_seq FROM audit_events WHERE seq = ?').get(keep) as {
      hash: Buffer;
      stream: number;
      stream_seq: number;
    };
    db.prepare('UPDATE audit_streams SET head_seq = ?, head_event = ?, head_hash = ? WHERE id = ?').run(
      h.stream_seq,
      keep,
      h.hash,
      h.stream,
    );
    db.prepare('DELETE FROM audit_checkpoints').run();
    db.close();

    const s2 = await startServer({ dataDir: s.dataDir });
    try {
      const u2 = rootCli(s2.url, s.rootToken);
      // server.start appended after the rewind: the chain itself verifies...
      assert.equal((await u2.json(['audit', 'verify'])).ok, true);
      // ...the anchor does not.
      const r = await u2.run(['audit', 'verify', ...anchor]);
      assert.equal(r.code, 3);
      assert.match(
        oneErrorLine(r.stderr),
        new RegExp(
          `^hush: audit chain broken at seq ${before.headSeq}: the anchor names event ${before.headSeq} ` +
            `but the log ends at ${before.headSeq - 1}`,
        ),
      );
    } finally {
      await s2.close();
    }
  });
});

describe('hush keys', () => {
  it('rotate starts a new data-key version; --rewrap re-encrypts old values, which stay readable', async () => {
    const s = await startServer();
    try {
      const u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'prod' });
      await u.json(['projects', 'create', 'api']);
      await u.json(['envs', 'create', 'prod']);
      await u.run(['secrets', 'set', 'A'], { input: 'alpha' });
      const r1 = await u.run(['keys', 'rotate']);
      assert.equal(r1.code, 0, r1.stderr);
      assert.match(r1.stdout, /^Project api now encrypts new values with data key v2\.\nOlder values stay readable .*--rewrap\n$/);
      const r2 = await u.json(['keys', 'rotate', 'api', '--rewrap']);
      assert.equal(r2.dekVersion, 3);
      assert.ok(r2.rewrapped >= 1);
      assert.equal((await u.run(['secrets', 'get', 'A'])).stdout, 'alpha');
      assert.equal((await u.run(['keys', 'rotate', 'nope'])).code, 5);
    } finally {
      await s.close();
    }
  });

  it('rotate-master refuses a key file others can read, then rotates; the server restarts on the new ' + 'key file', async () => {
    const s = await startServer();
    const u = rootCli(s.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'prod' });
    await u.json(['projects', 'create', 'api']);
    await u.json(['envs', 'create', 'prod']);
    await u.run(['secrets', 'set', 'DB_PASS'], { input: 'p@ss\nword' });

    const loose = writeFile(u.home, 'loose.key', `${Buffer.alloc(32, 7).toString('base64')}\n`, 0o644);
    const refused = await u.run(['keys', 'rotate-master', '--new-key-file', loose]);
    assert.equal(refused.code, 2);
    assert.match(oneErrorLine(refused.stderr), /readable by group or others \(mode 644\); run: chmod 600/);
    const notKey = writeFile(u.home, 'short.key', 'c2hvcnQ=\n');
    assert.equal((await u.run(['keys', 'rotate-master', '--new-key-file', notKey])).code, 2);

    const keyFile = join(u.home, 'new.key');
    const r = await u.run(['keys', 'rotate-master', '--new-key-file', keyFile, '--generate']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Master key rotated: \d+ wrapped key\(s\) moved from \S+ to \S+\.\n/);
    assert.match(
      r.stdout,
      /\nNext: every server's master key file \(HUSH_MASTER_KEY_FILE or --master-key-file\) must hold the key in .*new\.key/,
    );
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const again = await u.run(['keys', 'rotate-master', '--new-key-file', keyFile, '--generate']);
    assert.equal(again.code, 6);
    const same = await u.json(['keys', 'rotate-master', '--new-key-file', keyFile]);
    assert.equal(same.unchanged, true);
    await s.close({ keepDir: true });

    const s2 = await startServer({ dataDir: s.dataDir, settings: { 'master-key-file': keyFile } });
    try {
      const u2 = rootCli(s2.url, s.rootToken, { HUSH_PROJECT: 'api', HUSH_ENV: 'prod' });
      const g = await u2.run(['secrets', 'get', 'DB_PASS']);
      assert.equal(g.code, 0, g.stderr);
      assert.equal(g.stdout, 'p@ss\nword');
      assert.ok(existsSync(keyFile));
    } finally {
      await s2.close();
    }
  });
});

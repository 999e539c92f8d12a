/**
 * Size and speed: a backup and a restore of 100,000 secret versions
 * (10 environments x 5,000 secrets x 2 versions, 64-byte values), with a
 * real `hush server` process and the CLI, reporting wall time and peak RSS
 * (VmHWM) of the server during the backup and of the restore process.
 * Runs in about 25 s, so it is not gated behind HUSH_TEST_SLOW.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawnServer, waitExit } from '../helpers/cli.js';
import { apiOk } from '../helpers/http.js';
import { tempDir } from '../helpers/server.js';
import { HWM_RESET_SKIP, PROC_SKIP, procStatus, resetHwm } from '../helpers/memory.js';
import { runHushPeakRss } from './support.js';

const ENVS = 10;
const SECRETS = 5000;
const VERSIONS = ENVS * SECRETS * 2;

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

const val = (i: number, v: number) => `${v}:${i}:`.padEnd(64, 'abcdefghijklmnopqrstuvwxyz0123456789');

describe('100,000 secret versions: backup and restore', { timeout: 300_000, skip: PROC_SKIP }, () => {
  const work = tempDir('hush-bk-large-');
  const dataDir = join(work, 'src');
  const passFile = join(work, 'pass.txt');
  let srv: { child: ChildProcess; url: string; rootToken: string | null };
  let root: string;
  let reader: string;
  const timings: Record<string, string> = {};

  before(async () => {
    writeFileSync(passFile, 'large backup passphrase\n', { mode: 0o600 });
    srv = await spawnServer(['--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn']);
    root = srv.rootToken!;
    const api = (method: string, path: string, body?: unknown) => apiOk(srv.url, root, method, path, body);
    const t0 = Date.now();
    for (const p of ['big0', 'big1']) await api('POST', '/v1/projects', { name: p });
    for (let e = 0; e < ENVS; e++) {
      const p = `big${e % 2}`;
      await api('POST', `/v1/projects/${p}/envs`, { name: `e${e}` });
      for (let v = 1; v <= 2; v++) {
        const set: Record<string, string> = {};
        for (let i = 0; i < SECRETS; i++) set[`SECRET_${i}`] = val(i, v);
        await api('PATCH', `/v1/projects/${p}/envs/e${e}/secrets`, { set });
      }
    }
    reader = (await api('POST', '/v1/tokens', { name: 'reader', scopes: ['read:big0/e0'] })).token;
    timings.seed = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  });
  after(async () => {
    if (srv) {
      srv.child.kill('SIGTERM');
      await waitExit(srv.child);
    }
    rmSync(work, { recursive: true, force: true });
  });

  const file = join(work, 'large.pgp');

  it('backs up over HTTP (hush backup create) with bounded server memory', { skip: HWM_RESET_SKIP }, async (t) => {
    const pid = srv.child.pid!;
    const base = procStatus(pid, 'VmRSS');
    resetHwm(pid);
    const t0 = Date.now();
    const r = await runHushPeakRss(['backup', 'create', '--passphrase-file', passFile, '--out', file, '--json'], {
      env: { HUSH_ADDR: srv.url, HUSH_TOKEN: root },
      timeoutMs: 240_000,
    });
    const wall = Date.now() - t0;
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.counts.versions, VERSIONS);
    const peak = procStatus(pid, 'VmHWM');
    timings.backup =
      `${(wall / 1000).toFixed(1)} s, ${mib(statSync(file).size)} file; server RSS ${mib(base)} ` +
      `before, peak ${mib(peak)}; CLI peak RSS ${mib(r.peakRss)}`;
    t.diagnostic(`backup of ${VERSIONS} versions: ${timings.backup}`);
    // The dump is paged and streamed: the server's peak stays far below what holding the plaintext dump would take on top of its baseline.
    assert.ok(peak - base < 160 * 1048576, `server grew by ${mib(peak - base)} during the backup`);
    assert.ok(r.peakRss < 200 * 1048576, `CLI peak RSS ${mib(r.peakRss)}`);
  });

  it(
    'restores into a fresh data dir (hush backup restore) with bounded memory; the server starts on ' + 'it and an old token reads',
    async (t) => {
      const dir = join(work, 'restored');
      const t0 = Date.now();
      // A 64 MiB heap cap: the plaintext dump (~25 MiB of NDJSON, several times that as JS objects) could not be held in it.
      const r = await runHushPeakRss(['backup', 'restore', file, '--passphrase-file', passFile, '--data-dir', dir, '--json'], {
        timeoutMs: 240_000,
        env: { NODE_OPTIONS: '--max-old-space-size=64' },
      });
      const wall = Date.now() - t0;
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout);
      assert.equal(j.counts.versions, VERSIONS);
      assert.equal(j.verified, true);
      timings.restore =
        `${(wall / 1000).toFixed(1)} s (one pass + read-back + fsync); restore process peak RSS ` +
        `${mib(r.peakRss)} with a 64 MiB heap cap`;
      t.diagnostic(`restore of ${VERSIONS} versions: ${timings.restore}`);
      assert.ok(r.peakRss < 300 * 1048576, `restore peak RSS ${mib(r.peakRss)}`);
      const s2 = await spawnServer(['--data-dir', dir, '--listen', '127.0.0.1:0', '--log-level', 'warn']);
      try {
        const res = await fetch(`${s2.url}/v1/projects/big0/envs/e0/secrets`, { headers: { authorization: `Bearer ${reader}` } });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { secrets: Record<string, string> };
        assert.equal(Object.keys(body.secrets).length, SECRETS);
        assert.equal(body.secrets.SECRET_42, val(42, 2));
      } finally {
        s2.child.kill('SIGTERM');
        await waitExit(s2.child);
      }
      t.diagnostic(`seeding: ${timings.seed}`);
    },
  );
});

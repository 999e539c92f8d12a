// The bulk paths (issue 22) on one engine at one size: backup, restore and their
// peak RSS, each next to its baseline measured in the same run the same way:
//
//   backup   POST /v1/backups (passphrase) of a vault of N versions, written to a file
//            baseline: gpg --symmetric of the vault's database as a file (SQLite: a copy
//            of hush.db; PostgreSQL: pg_dump's plain output of the database)
//   restore  `hush backup restore` of that backup into an empty target, in a child
//            process (restore-child.js), read back and made durable
//            baseline: gpg --decrypt of the baseline's encrypted file
//
// The vault is seeded by restoring a synthetic backup (make-backup.js, encrypted
// with gpg, uncompressed): seeding 1M versions through the API would take hours.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { freshPgDatabase } from '../helpers/server.js';
import { DIST, HUSH_BIN, median, resetPeakRss, rssOf, spawnListening, timeCommand } from './lib.js';

export interface BulkFigures {
  engine: 'sqlite' | 'postgres';
  versions: number;
  backupMs: number[];
  backupBaselineMs: number[];
  backupPeakRssMb: number;
  backupBytes: number;
  restoreMs: number[];
  restoreBaselineMs: number[];
  restorePeakRssMb: number;
  baselineFileBytes: number;
}

function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr || r.stdout}`);
  return r.stdout;
}

export async function bulkFigures(tmp: string, engine: 'sqlite' | 'postgres', versions: number, runs: number): Promise<BulkFigures> {
  const work = mkdtempSync(join(tmp, `bulk-${engine}-${versions}-`));
  const pass = join(work, 'pass');
  writeFileSync(pass, 'bench-passphrase', { mode: 0o600 });
  const gpgHome = mkdtempSync(join(work, 'gnupg-'));
  const gpg = (args: string[]) => [
    '--homedir',
    gpgHome,
    '--batch',
    '--yes',
    '--pinentry-mode',
    'loopback',
    '--passphrase-file',
    pass,
    ...args,
  ];
  const dbs: { drop: () => Promise<void> }[] = [];
  const target = async (name: string): Promise<{ dir: string; url: string | null }> => {
    if (engine === 'sqlite') return { dir: join(work, name), url: null };
    const db = (await freshPgDatabase())!;
    dbs.push(db);
    return { dir: join(work, name), url: db.url };
  };
  const restore = (file: string, t: { dir: string; url: string | null }) => {
    const t0 = process.hrtime.bigint();
    const child = spawnSync(process.execPath, [join(DIST, 'test/bench/restore-child.js'), file, pass, t.dir, ...(t.url ? [t.url] : [])], {
      encoding: 'utf8',
    });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (child.status !== 0) throw new Error(`restore failed: ${child.stderr}`);
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!);
    if (!r.verified || r.counts.versions !== versions) throw new Error(`restore did not verify: ${child.stdout}`);
    return { ms, peakMb: r.maxRssMb as number };
  };
  try {
    // Seed: a synthetic backup of N versions, restored into the source vault.
    const body = join(work, 'seed.ndjson');
    const { rootToken } = JSON.parse(
      run(process.execPath, [join(DIST, 'test/bench/make-backup.js'), body, String(versions)], 'make-backup').trim(),
    );
    run('gpg', gpg(['--compress-algo', 'none', '--symmetric', '-o', `${body}.gpg`, body]), 'gpg (seed)');
    rmSync(body);
    const source = await target('source');
    restore(`${body}.gpg`, source);
    rmSync(`${body}.gpg`);

    // Backup: from a server on the source vault; its peak RSS is reset first (clear_refs).
    const s = await spawnListening([
      HUSH_BIN,
      'server',
      '--data-dir',
      source.dir,
      ...(source.url ? ['--database-url', source.url] : []),
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
    ]);
    const out = join(work, 'backup.pgp');
    const backupMs: number[] = [];
    let backupPeakRssMb = 0;
    try {
      for (let i = 0; i < runs; i++) {
        resetPeakRss(s.child.pid!);
        const t0 = process.hrtime.bigint();
        const res = await fetch(`${s.url}/v1/backups`, {
          method: 'POST',
          headers: { authorization: `Bearer ${rootToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ passphrase: 'bench-passphrase' }),
        });
        if (!res.ok || !res.body) throw new Error(`backup -> ${res.status} ${await res.text()}`);
        // Streamed to the file: holding a 1M-version backup in this process would make it (and every child it forks) 1 GB.
        await pipeline(Readable.fromWeb(res.body), createWriteStream(out, { mode: 0o600 }));
        backupMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        backupPeakRssMb = Math.max(backupPeakRssMb, rssOf(s.child.pid!).peakMb);
      }
    } finally {
      await s.stop();
    }

    // The baseline file: the database as a file.
    const raw = join(work, 'database-file');
    if (engine === 'sqlite') run('sqlite3', [join(source.dir, 'hush.db'), `.backup ${raw}`], 'sqlite3 .backup');
    else run('pg_dump', ['--no-owner', '-f', raw, source.url!], 'pg_dump');
    const backupBaselineMs = Array.from({ length: runs }, () => timeCommand('gpg', gpg(['--symmetric', '-o', `${raw}.gpg`, raw])).ms);

    const restoreMs: number[] = [];
    let restorePeakRssMb = 0;
    for (let i = 0; i < runs; i++) {
      const t = await target(`restored-${i}`);
      const r = restore(out, t);
      restoreMs.push(r.ms);
      restorePeakRssMb = Math.max(restorePeakRssMb, r.peakMb);
      rmSync(t.dir, { recursive: true, force: true });
      if (t.url) await dbs.pop()!.drop();
    }
    const restoreBaselineMs = Array.from(
      { length: runs },
      () => timeCommand('gpg', gpg(['-o', `${raw}.out`, '--decrypt', `${raw}.gpg`])).ms,
    );
    return {
      engine,
      versions,
      backupMs,
      backupBaselineMs,
      backupPeakRssMb,
      backupBytes: statSync(out).size,
      restoreMs,
      restoreBaselineMs,
      restorePeakRssMb,
      baselineFileBytes: statSync(raw).size,
    };
  } finally {
    for (const d of dbs) await d.drop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

export const med = median;

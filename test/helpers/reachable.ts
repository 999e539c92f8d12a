/**
 * The built CLI where another user can run it. Tests that run `hush` as
 * `nobody` must not depend on where the checkout lives: a clone in a
 * mode-0700 directory (a home, what `mktemp -d` makes) cannot be reached by
 * that user, and `node dist/cli/main.js` then fails with "Cannot find
 * module". So when the user cannot read the CLI where it is, what it runs
 * (package.json, dist/, sdk/, node_modules/) is copied once into a fresh
 * world-readable directory, hard-linked where the filesystem allows (fast,
 * and the files' own modes already let others read them), copied otherwise.
 * The copy is removed when the test process exits.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const PARTS = ['package.json', 'dist', 'sdk', 'node_modules'];

/** Can `uid` load the CLI at `main` (every module it imports first included)? */
function runsAs(uid: number, main: string): boolean {
  return (
    spawnSync(process.execPath, [main, '--version'], { uid, gid: uid, stdio: 'ignore', env: { PATH: process.env.PATH, HOME: '/tmp' } })
      .status === 0
  );
}

const made = new Map<number, string | Error>();

/** The path of a `dist/cli/main.js` that `uid` can run; throws an Error saying why there is none. */
export function cliReachableBy(uid: number): string {
  const known = made.get(uid);
  if (known instanceof Error) throw known;
  if (known) return known;
  if (runsAs(uid, CLI)) {
    made.set(uid, CLI);
    return CLI;
  }
  for (const base of [...new Set([tmpdir(), '/tmp', '/var/tmp'])]) {
    let dir: string | null = null;
    try {
      dir = mkdtempSync(join(base, 'hush-cli-'));
      chmodSync(dir, 0o755);
      for (const part of PARTS) {
        try {
          execFileSync('cp', ['-al', join(ROOT, part), dir], { stdio: 'ignore' });
        } catch {
          cpSync(join(ROOT, part), join(dir, part), { recursive: true, verbatimSymlinks: true });
        }
      }
      const main = join(dir, 'dist/cli/main.js');
      if (runsAs(uid, main)) {
        const d = dir;
        process.once('exit', () => rmSync(d, { recursive: true, force: true }));
        made.set(uid, main);
        return main;
      }
    } catch {
      /* the next place */
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  const e = new Error(`user ${uid} cannot run the built CLI, and no copy of it in a directory that user can reach could be made`);
  made.set(uid, e);
  throw e;
}

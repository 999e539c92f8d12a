import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';

/**
 * The data dir, made and checked without Node's recursive mkdir: that one
 * never returns for a path under /proc (mkdir answers ENOENT while the
 * parent exists, and it retries forever). Each missing part of the path is
 * made in turn, mode 0700, and whatever goes wrong becomes one line naming
 * the path and what is wrong with it (never raw errno text), as a
 * ConfigError: `hush server` and `hush backup restore` exit 2 with it.
 */

/** Why `path` (the data dir, or the part of it being made) cannot be used, as the end of a sentence. */
function problem(code: string | undefined): string {
  switch (code) {
    case 'ENOTDIR':
      return 'a part of the path is a file, not a directory';
    case 'EACCES':
    case 'EPERM':
      return `permission denied for this user (uid ${process.getuid?.() ?? '?'}): the directory, or the one it is made in, must be writable by it`;
    case 'EROFS':
      return 'it is on a read-only file system';
    case 'ENOSPC':
      return 'no space is left on its device';
    case 'EDQUOT':
      return 'the disk quota of this user is used up';
    case 'ELOOP':
      return 'the path has a loop of symbolic links';
    case 'ENAMETOOLONG':
      return 'the path is too long';
    case 'EEXIST':
      return 'it exists and is not a directory';
    case 'ENOENT':
      return 'a directory cannot be made there (a virtual file system such as /proc or /sys?)';
    default:
      return `it cannot be used (${code ?? 'unknown error'})`;
  }
}

function fail(dir: string, at: string, code: string | undefined): never {
  throw new ConfigError(`data dir ${dir} cannot be used: ${at === dir ? '' : `${at}: `}${problem(code)}`);
}

/** Creates the data dir with mode 0700 (and tightens an existing one), or throws one readable ConfigError. */
export function ensureDataDir(dir: string): void {
  const abs = resolve(dir);
  // The parts of the path that do not exist yet, from the nearest existing ancestor down.
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    try {
      if (!statSync(at).isDirectory()) fail(abs, at, at === abs ? 'EEXIST' : 'ENOTDIR');
      break;
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') fail(abs, at, code);
      missing.unshift(at);
      const up = dirname(at);
      if (up === at) fail(abs, at, code);
      at = up;
    }
  }
  for (const part of missing) {
    try {
      mkdirSync(part, { mode: 0o700 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Made meanwhile by someone else: fine when it is a directory.
      if (code === 'EEXIST' && statSync(part).isDirectory()) continue;
      fail(abs, part, code);
    }
  }
  try {
    if ((statSync(abs).mode & 0o077) !== 0) chmodSync(abs, 0o700);
    accessSync(abs, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (e) {
    fail(abs, abs, (e as NodeJS.ErrnoException).code);
  }
}

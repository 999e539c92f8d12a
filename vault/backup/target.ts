import { closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HushError } from '../errors.js';
import { DEV_KEY_FILE } from '../vault.js';

/** The restore target holds a symbolic link (or something else than a plain file) where the restore writes. */
export class RestoreTargetUnsafeError extends HushError {
  constructor(message: string) {
    super('restore_target_unsafe', 409, message);
  }
}

/** The files a SQLite restore writes: the database, its journals, and a generated master.key. */
export function sqliteTargetFiles(dbFile: string, dataDir: string): string[] {
  return [dbFile, `${dbFile}-wal`, `${dbFile}-shm`, `${dbFile}-journal`, join(dataDir, DEV_KEY_FILE)];
}

/**
 * Refuses a target where a symbolic link (dangling or not) or anything but a
 * regular file sits at a path the restore writes: a link planted at hush.db
 * would have the restore write its database somewhere else. Reads only.
 */
export function assertNoLinks(paths: readonly string[]): void {
  for (const p of paths) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    } // absent: fine
    if (st.isSymbolicLink())
      throw new RestoreTargetUnsafeError(
        `the restore target ${p} is a symbolic link; refusing to write through it (remove it, or restore elsewhere)`,
      );
    if (!st.isFile()) throw new RestoreTargetUnsafeError(`the restore target ${p} is not a regular file`);
  }
}

/** Refuses a file that has other hard links: writing into it would write into a file elsewhere. Absent: fine. */
export function assertNoHardLinks(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (st.isFile() && st.nlink > 1)
    throw new RestoreTargetUnsafeError(
      `the restore target ${path} has other hard links (another name of a file elsewhere); refusing to write into it (remove it, or restore elsewhere)`,
    );
}

/**
 * Creates the SQLite database file of a restore, empty, with O_EXCL and
 * O_NOFOLLOW and mode 0600, before SQLite opens it: the path is then this
 * process's own new file and no link (SQLite creates its journals with the
 * database file's mode). False when it already existed (an empty file the
 * target check let through): then it must be a regular file with no other
 * hard link, and is made mode 0600.
 */
export function createSqliteFile(dbFile: string): boolean {
  let fd: number;
  try {
    fd = openSync(dbFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    assertNoLinks([dbFile]);
    // An empty file the target check let through: not another name of a file elsewhere (a hard link), and private.
    assertNoHardLinks(dbFile);
    const existing = openSync(dbFile, constants.O_RDWR | constants.O_NOFOLLOW);
    try {
      fchmodSync(existing, 0o600);
    } finally {
      closeSync(existing);
    }
    return false;
  }
  closeSync(fd);
  return true;
}

/**
 * Makes what the restore wrote durable before it reports done (the restore
 * itself ran with synchronous=OFF): fsync of each file that exists (not
 * following links) and of the directory holding them.
 */
export function fsyncFiles(paths: readonly string[]): void {
  const dirs = new Set<string>();
  for (const p of paths) {
    let fd: number;
    try {
      fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      continue;
    }
    try {
      if (fstatSync(fd).isFile()) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    dirs.add(dirname(p));
  }
  for (const d of dirs) {
    const fd = openSync(d, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

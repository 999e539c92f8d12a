/**
 * File writing shared by the server and the client (`common/` is imported by
 * both `vault/` and `cli/`, and imports neither): pure node:fs, so the
 * single-file client bundles it without any of the server.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/** Thrown by an exclusive write when the file already exists. */
export class FileExistsError extends Error {
  readonly code = 'EEXIST';
}

/**
 * Writes a file atomically with mode 0600: temp file, fsync, rename, fsync of
 * the directory (as writeAtomically does, so a crash right after cannot lose
 * the rename). With `exclusive`, refuses to replace an existing file
 * (FileExistsError).
 */
export function writeSecretFile(path: string, content: string | Buffer, opts: { exclusive?: boolean } = {}): void {
  if (opts.exclusive && existsSync(path)) throw new FileExistsError(`${path} already exists; refusing to overwrite it`);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content) : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * Writes a stream to `dir/name` atomically: a temp file (mode 0600) in the
 * same dir, fsync, rename, fsync of the dir. On any failure the temp file is
 * removed and the stream destroyed; `dir/name` is either complete or absent.
 */
export async function writeAtomically(dir: string, name: string, stream: Readable): Promise<string> {
  const final = join(dir, name);
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  // The producer learns why its stream was abandoned (a backup audits that
  // reason); the caller gets the same error from this function's rejection.
  const abandon = (e: unknown) => {
    stream.on('error', () => undefined);
    stream.destroy(e instanceof Error ? e : new Error(String(e)));
  };
  let fh;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fh = await open(tmp, 'wx', 0o600);
  } catch (e) {
    abandon(e);
    throw e;
  }
  try {
    for await (const chunk of stream) await fh.write(chunk as Buffer);
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(tmp, final);
  } catch (e) {
    abandon(e);
    await fh?.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
  return final;
}

/**
 * A passphrase file's first line, as `gpg --passphrase-file` reads it (a
 * trailing CR is dropped too), so the same file opens the backup with gpg.
 * Empty when the first line is.
 */
export function readFirstLine(path: string): string {
  const text = readFileSync(path, 'utf8');
  const nl = text.indexOf('\n');
  return (nl === -1 ? text : text.slice(0, nl)).replace(/\r$/, '');
}

/** Thrown by readBounded when the file holds more than its limit. */
export class FileTooLargeError extends Error {
  readonly code = 'EFBIG';
}

/**
 * Reads a small file (a token, a key) as UTF-8, at most `max` bytes. It may
 * be a pipe (`--token-file <(pass show hush)`), so the limit is on what is
 * read, not on what stat says: /dev/zero or a wrong path fails instead of
 * filling memory.
 */
export function readBounded(path: string, max = 65_536): string {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(65_536, max + 1));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > max) throw new FileTooLargeError(`${path} is larger than ${max} bytes`);
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

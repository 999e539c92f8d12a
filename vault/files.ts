import { AlreadyInitializedError } from './errors.js';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

/**
 * Writes a file atomically with mode 0600: temp file, fsync, rename. With
 * `exclusive`, refuses to replace an existing file. Pure node:fs, so the CLI
 * can use it without loading the server.
 */
export function writeSecretFile(path: string, content: string | Buffer, opts: { exclusive?: boolean } = {}): void {
  if (opts.exclusive && existsSync(path)) throw new AlreadyInitializedError(`${path} already exists; refusing to overwrite it`);
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
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
}

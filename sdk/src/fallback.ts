/**
 * Encrypted last-known-good copy of environments, for when the server cannot
 * be reached. Loaded lazily by the client, so `node:crypto` and `node:fs` cost
 * nothing unless a fallback is configured.
 *
 * File (JSON, mode 0600, replaced atomically by temp file + rename):
 *   {"format":"hush-fallback","version":1,"entries":{"<id>":{salt,iv,tag,ciphertext,savedAt}}}
 * One entry per (server address, project, env); `id` is a SHA-256 of those.
 * Each entry is AES-256-GCM under HKDF-SHA256(token, salt,
 * "hush-fallback-v1" + addr/project/env). The associated data binds savedAt,
 * so the age cannot be edited, and the entry's identity, so an entry cannot
 * be moved to another environment. The token is never written.
 */
import { createCipheriv, createDecipheriv, createHash, hkdf, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface CacheEntry {
  secrets: Record<string, string>;
  revision: number;
  /** The `only` filter the values were read with; null for the whole environment. */
  only: string[] | null;
  savedAt: number;
}

interface StoredEntry {
  salt: string;
  iv: string;
  tag: string;
  ciphertext: string;
  savedAt: string;
}
interface CacheFile {
  format: 'hush-fallback';
  version: 1;
  entries: Record<string, StoredEntry>;
}

const INFO = 'hush-fallback-v1';

function identity(addr: string, project: string, env: string): string {
  return `${INFO}\n${addr}\n${project}\n${env}`;
}

function entryId(addr: string, project: string, env: string): string {
  return createHash('sha256')
    .update(identity(addr, project, env))
    .digest('hex')
    .slice(0, 32);
}

function deriveKey(token: string, salt: Buffer, info: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    hkdf('sha256', token, salt, info, 32, (err, key) => (err ? reject(err) : resolve(Buffer.from(key))));
  });
}

async function readCacheFile(path: string): Promise<CacheFile | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = JSON.parse(text) as CacheFile;
  if (parsed?.format !== 'hush-fallback' || parsed.version !== 1 || typeof parsed.entries !== 'object' || parsed.entries === null) {
    throw new Error('not a Hush fallback cache file');
  }
  return parsed;
}

async function writeCacheFile(path: string, file: CacheFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(file));
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

// Read-modify-write of one file must not interleave within a process.
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(path) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  queues.set(path, settled);
  void settled.then(() => {
    if (queues.get(path) === settled) queues.delete(path);
  });
  return next;
}

/** Encrypts and stores one environment's values, replacing its previous entry. */
export function saveEntry(path: string, token: string, addr: string, project: string, env: string, entry: CacheEntry): Promise<void> {
  return serialized(path, async () => {
    let file: CacheFile | null;
    try {
      file = await readCacheFile(path);
    } catch {
      file = null; /* unreadable: start over */
    }
    file ??= { format: 'hush-fallback', version: 1, entries: {} };
    const info = identity(addr, project, env);
    const savedAt = new Date(entry.savedAt).toISOString();
    const salt = randomBytes(16);
    const iv = randomBytes(12);
    const key = await deriveKey(token, salt, info);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`${info}\n${savedAt}`));
    const plaintext = Buffer.from(JSON.stringify({ secrets: entry.secrets, revision: entry.revision, only: entry.only }));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    plaintext.fill(0);
    key.fill(0);
    file.entries[entryId(addr, project, env)] = {
      salt: salt.toString('base64'),
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      ciphertext: ciphertext.toString('base64'),
      savedAt,
    };
    await writeCacheFile(path, file);
  });
}

/**
 * Reads and decrypts one environment's entry. Resolves null when there is no
 * file or no entry; rejects when the file or entry cannot be read or
 * decrypted (another token wrote it, or it was altered).
 */
export async function loadEntry(path: string, token: string, addr: string, project: string, env: string): Promise<CacheEntry | null> {
  const file = await readCacheFile(path);
  const stored = file?.entries[entryId(addr, project, env)];
  if (!stored) return null;
  const info = identity(addr, project, env);
  const key = await deriveKey(token, Buffer.from(stored.salt, 'base64'), info);
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(stored.iv, 'base64'));
  decipher.setAAD(Buffer.from(`${info}\n${stored.savedAt}`));
  decipher.setAuthTag(Buffer.from(stored.tag, 'base64'));
  const plaintext = Buffer.concat([decipher.update(Buffer.from(stored.ciphertext, 'base64')), decipher.final()]);
  key.fill(0);
  const data = JSON.parse(plaintext.toString('utf8')) as Omit<CacheEntry, 'savedAt'>;
  plaintext.fill(0);
  return { secrets: data.secrets, revision: data.revision, only: data.only, savedAt: Date.parse(stored.savedAt) };
}

/** Removes one environment's entry; removes the file when no entry is left. */
export function removeEntry(path: string, addr: string, project: string, env: string): Promise<void> {
  return serialized(path, async () => {
    let file: CacheFile | null;
    try {
      file = await readCacheFile(path);
    } catch {
      await rm(path, { force: true });
      return;
    }
    if (!file) return;
    delete file.entries[entryId(addr, project, env)];
    if (Object.keys(file.entries).length === 0) await rm(path, { force: true });
    else await writeCacheFile(path, file);
  });
}

/** Deletes the whole cache file (the token is no longer valid for any entry in it). */
export function removeFile(path: string): Promise<void> {
  return serialized(path, () => rm(path, { force: true }));
}

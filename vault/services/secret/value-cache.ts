/**
 * Decrypted values of recently read environments. An entry is valid for
 * exactly one (env id, env created_at, revision): every change to an env's
 * secrets bumps its revision in the same transaction, env ids are never
 * reused (autoincrement / sequences), and each read looks the revision up
 * inside its own transaction. So a hit returns exactly what decrypting the
 * current rows would return, on every process sharing the database, and the
 * read is audited as before. Entries are only added after the transaction
 * that read them committed (a revision seen inside a batch that then rolled
 * back could later be committed with other values).
 *
 * The process already holds every data key, so keeping recently served
 * plaintext in its heap does not widen what a reader of its memory gets.
 * Size 0 turns the cache off.
 */
export interface CachedEnv {
  /** Live secret names in the order the store returns them. */
  readonly names: readonly string[];
  readonly values: Readonly<Record<string, string>>;
}

interface Entry extends CachedEnv {
  projectId: number;
  createdAt: number;
  revision: number;
  bytes: number;
}

export interface EnvVersion {
  id: number;
  createdAt: number;
  revision: number;
}

export function valueCacheFactory(maxBytes: number) {
  const entries = new Map<number, Entry>();
  let total = 0;

  function drop(envId: number): void {
    const e = entries.get(envId);
    if (!e) return;
    entries.delete(envId);
    total -= e.bytes;
  }

  return {
    get(projectId: number, env: EnvVersion): CachedEnv | null {
      const e = entries.get(env.id);
      if (!e) return null;
      if (e.projectId !== projectId || e.createdAt !== env.createdAt || e.revision !== env.revision) {
        drop(env.id);
        return null;
      }
      // Most recently used last: Map keeps insertion order.
      entries.delete(env.id);
      entries.set(env.id, e);
      return e;
    },

    /** Call only after the transaction that read `values` at `env.revision` committed. */
    set(projectId: number, env: EnvVersion, names: readonly string[], values: Record<string, string>): CachedEnv {
      let bytes = 256;
      for (const n of names) bytes += 2 * (n.length + values[n].length) + 64;
      const entry: Entry = {
        projectId,
        createdAt: env.createdAt,
        revision: env.revision,
        bytes,
        names: Object.freeze([...names]),
        values: Object.freeze(values),
      };
      if (bytes > maxBytes) return entry;
      const old = entries.get(env.id);
      // A newer revision may already be cached by a read that committed later.
      if (old && old.createdAt === env.createdAt && old.revision > env.revision) return entry;
      drop(env.id);
      entries.set(env.id, entry);
      total += bytes;
      for (const [id] of entries) {
        if (total <= maxBytes) break;
        drop(id);
      }
      return entry;
    },

    dropEnv: drop,

    dropProject(projectId: number): void {
      for (const [id, e] of entries) if (e.projectId === projectId) drop(id);
    },

    /** Forgets every value (on seal): the cached strings become garbage, which JavaScript cannot zero. */
    clear(): void {
      entries.clear();
      total = 0;
    },

    get size() {
      return { entries: entries.size, bytes: total };
    },
  };
}
export type ValueCache = ReturnType<typeof valueCacheFactory>;

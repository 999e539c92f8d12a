/**
 * Group lookups: concurrent reads of the same kind (the token of each
 * request, the environment it names) go to the database together, one
 * statement for many keys, instead of one round trip each.
 *
 * Nothing is cached: every lookup is answered by a statement that started
 * after the lookup was asked for, so it sees everything committed before
 * (a revocation, a new revision) exactly as a lookup of its own would.
 *
 * Scheduling is that of group commit: keys asked for in the same turn of
 * the event loop go together; while `maxInFlight` statements are running,
 * new keys queue and go with the next one. Each statement carries at most
 * `maxKeys` keys. On PostgreSQL this turns N round trips (each a system
 * call on both sides and a pool checkout) into about one per batch; on
 * SQLite, whose reads are synchronous calls, the store does not use it.
 */
export interface LookupBatch<K, V> {
  load(key: K): Promise<V | undefined>;
}

export function lookupBatch<K, V>(
  fetch: (keys: K[]) => Promise<Map<string, V>>,
  keyOf: (k: K) => string,
  opts: { maxInFlight?: number; maxKeys?: number } = {},
): LookupBatch<K, V> {
  const maxInFlight = opts.maxInFlight ?? 2;
  const maxKeys = opts.maxKeys ?? 256;
  let queue: { key: K; resolve: (v: V | undefined) => void; reject: (e: unknown) => void }[] = [];
  let inFlight = 0;
  let scheduled = false;

  function pump(): void {
    scheduled = false;
    while (queue.length > 0 && inFlight < maxInFlight) {
      const batch = queue.slice(0, maxKeys);
      queue = queue.slice(batch.length);
      inFlight++;
      // One key asked twice in a batch is fetched once.
      const keys = new Map<string, K>();
      for (const b of batch) keys.set(keyOf(b.key), b.key);
      fetch([...keys.values()])
        .then(
          (found) => {
            for (const b of batch) b.resolve(found.get(keyOf(b.key)));
          },
          (e) => {
            for (const b of batch) b.reject(e);
          },
        )
        .finally(() => {
          inFlight--;
          if (queue.length > 0) schedule();
        });
    }
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    // After this turn's I/O callbacks: requests that arrived together ask together.
    setImmediate(pump);
  }

  return {
    load(key: K): Promise<V | undefined> {
      return new Promise((resolve, reject) => {
        queue.push({ key, resolve, reject });
        schedule();
      });
    },
  };
}

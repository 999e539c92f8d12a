import type { Container } from '../container.js';
import { transaction } from '../store/db.js';

/**
 * The last successful backup, for the metrics: when it finished, how long it
 * took and its size. Kept in the meta table (one JSON value), so every server
 * sharing the database reports the same backup, whichever server made it.
 * A new key: a vault without it has had no backup recorded yet.
 */
export const BACKUP_STATS_KEY = 'backup_last_stats';

export interface BackupStats {
  at: number;
  ms: number;
  bytes: number;
}

export function parseBackupStats(text: string | null): BackupStats | null {
  if (!text) return null;
  try {
    const o = JSON.parse(text) as Partial<BackupStats>;
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
    return ok(o.at) && ok(o.ms) && ok(o.bytes) ? { at: o.at, ms: o.ms, bytes: o.bytes } : null;
  } catch {
    return null;
  }
}

/** Records a backup that finished now, having started at `startedAt` (epoch ms). */
export async function recordBackupStats(c: Pick<Container, 'db' | 'stores'>, startedAt: number, bytes: number): Promise<void> {
  const at = Date.now();
  await transaction(c.db, (tx) => c.stores.meta.set(BACKUP_STATS_KEY, JSON.stringify({ at, ms: at - startedAt, bytes }), tx));
}

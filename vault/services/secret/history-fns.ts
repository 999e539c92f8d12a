import type { VersionMeta } from '../../store/history-store.js';

/** One revision of an environment, rebuilt from the versions it wrote. */
export interface RevisionEntry {
  revision: number;
  /** When its last version was written (epoch ms). */
  createdAt: number;
  actorIds: string[];
  changes: { key: string; version: number; deleted: boolean }[];
  /** Secrets live once this revision is applied. */
  liveAfter: number;
}

/** Versions in revision order (history-store envVersions) -> one entry per revision that wrote any, oldest first. */
export function replay(versions: readonly VersionMeta[]): RevisionEntry[] {
  const out: RevisionEntry[] = [];
  const live = new Set<string>();
  let cur: RevisionEntry | null = null;
  for (const v of versions) {
    if (!cur || cur.revision !== v.revision) {
      cur = { revision: v.revision, createdAt: v.createdAt, actorIds: [], changes: [], liveAfter: 0 };
      out.push(cur);
    }
    cur.createdAt = Math.max(cur.createdAt, v.createdAt);
    if (!cur.actorIds.includes(v.createdBy)) cur.actorIds.push(v.createdBy);
    cur.changes.push({ key: v.name, version: v.version, deleted: v.deleted });
    if (v.deleted) live.delete(v.name); else live.add(v.name);
    cur.liveAfter = live.size;
  }
  return out;
}

/** The newest entry at or before `revision`, or null. */
export function entryAt(entries: readonly RevisionEntry[], revision: number): RevisionEntry | null {
  let found: RevisionEntry | null = null;
  for (const e of entries) { if (e.revision > revision) break; found = e; }
  return found;
}

/** Names added, removed and changed from map `a` to map `b` (values compared by the caller's `same`), each sorted. */
export function diffMaps(a: Record<string, string>, b: Record<string, string>, same: (x: string, y: string) => boolean) {
  const added: string[] = []; const removed: string[] = []; const changed: string[] = []; let unchanged = 0;
  const has = (m: Record<string, string>, k: string) => Object.prototype.hasOwnProperty.call(m, k);
  for (const k of Object.keys(b)) {
    if (!has(a, k)) added.push(k);
    else if (same(a[k], b[k])) unchanged++;
    else changed.push(k);
  }
  for (const k of Object.keys(a)) if (!has(b, k)) removed.push(k);
  const byBytes = (x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y));
  return { added: added.sort(byBytes), removed: removed.sort(byBytes), changed: changed.sort(byBytes), unchanged };
}

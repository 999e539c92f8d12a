import type { RevisionMeta, VersionMeta } from '../../store/history-store.js';

/** One revision of an environment: its summary and the versions it wrote. */
export interface RevisionEntry extends RevisionMeta {
  actorIds: string[];
  changes: { key: string; version: number; deleted: boolean }[];
}

/** Joins revision summaries (newest first) with the versions they wrote. */
export function withVersions(revisions: readonly RevisionMeta[], versions: readonly VersionMeta[]): RevisionEntry[] {
  const by = new Map<number, RevisionEntry>(revisions.map((r) => [r.revision, { ...r, actorIds: [], changes: [] }]));
  for (const v of versions) {
    const e = by.get(v.revision);
    if (!e) continue;
    if (!e.actorIds.includes(v.createdBy)) e.actorIds.push(v.createdBy);
    e.changes.push({ key: v.name, version: v.version, deleted: v.deleted });
  }
  return revisions.map((r) => by.get(r.revision)!);
}

/** Names added, removed and changed from map `a` to map `b` (values compared by the caller's `same`), each sorted. */
export function diffMaps(a: Record<string, string>, b: Record<string, string>, same: (x: string, y: string) => boolean) {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  let unchanged = 0;
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

import type { Knex } from 'knex';

/**
 * Env history (docs/history.md): each secret version records the revision
 * of its environment that wrote it, so the set of versions live at any
 * revision N (for each secret, its newest version written at or before N)
 * can be rebuilt: history, diff, rollback and the KV v2 `?version=N`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('secret_versions', (t) => {
    t.bigInteger('revision');
  });
  await backfillRevisions(knex);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('secret_versions', (t) => {
    t.dropColumn('revision');
  });
}

/** Versions written this close together (ms), by one actor, to distinct secrets, are taken as one write (a bulk change). */
const SAME_WRITE_GAP_MS = 50;

interface LegacyVersion {
  id: number | string;
  secret_id: number;
  created_by: string;
  created_at: number | string;
}

/**
 * Gives a revision to every version that has none (written before this
 * migration, or restored from a backup format without revisions). Releases
 * before it did not record which revision wrote a version; they did bump
 * the revision by one per change, so:
 *
 * - when an environment holds as many such versions as its revision (every
 *   change wrote one version: single puts and deletes), version i in write
 *   order (created_at, then id) is revision i, exactly;
 * - otherwise consecutive versions written by one actor within
 *   SAME_WRITE_GAP_MS of each other, to distinct secrets, are grouped as
 *   one change, and the groups take the revisions up to the current one,
 *   the last group at the current revision (earlier groups that do not fit
 *   share revision 1).
 *
 * Either way the state at the current revision is the current state.
 */
export async function backfillRevisions(knex: Knex): Promise<void> {
  const envs: { id: number; revision: number | string }[] = await knex('environments').select('id', 'revision');
  for (const env of envs) {
    const current = Number(env.revision);
    const rows: LegacyVersion[] = await knex('secret_versions as v')
      .join('secrets as s', 's.id', 'v.secret_id')
      .where('s.env_id', env.id)
      .whereNull('v.revision')
      .orderBy([{ column: 'v.created_at' }, { column: 'v.id' }])
      .select('v.id', 'v.secret_id', 'v.created_by', 'v.created_at');
    if (rows.length === 0) continue;
    const assigned: number[] = [];
    if (rows.length === current) {
      rows.forEach((_, i) => assigned.push(i + 1));
    } else {
      const groupOf: number[] = [];
      let group = 0;
      let seen = new Set<number>();
      rows.forEach((r, i) => {
        const prev = rows[i - 1];
        const same =
          prev &&
          prev.created_by === r.created_by &&
          Number(r.created_at) - Number(prev.created_at) <= SAME_WRITE_GAP_MS &&
          !seen.has(r.secret_id);
        if (!same) {
          group++;
          seen = new Set();
        }
        seen.add(r.secret_id);
        groupOf.push(group);
      });
      const top = Math.max(current, 1);
      for (const g of groupOf) assigned.push(Math.max(1, top - group + g));
    }
    // One update per revision value: the ids of its versions in one statement.
    const byRevision = new Map<number, (number | string)[]>();
    rows.forEach((r, i) => {
      const list = byRevision.get(assigned[i]) ?? [];
      list.push(r.id);
      byRevision.set(assigned[i], list);
    });
    for (const [revision, ids] of byRevision) {
      for (let i = 0; i < ids.length; i += 500)
        await knex('secret_versions')
          .whereIn('id', ids.slice(i, i + 500))
          .update({ revision });
    }
    // A vault whose revision counter is behind its versions (it cannot be, but a hand-edited one might) keeps its state reachable.
    if (current === 0) await knex('environments').where('id', env.id).update({ revision: 1 });
  }
}

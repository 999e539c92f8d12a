import type { Knex } from 'knex';

/**
 * The audit log becomes a set of chains, one per writing process (a
 * stream), so several server processes append without waiting on one
 * another (docs/audit.md, "Streams and checkpoints").
 *
 * - audit_streams: one row per stream, with its head (the stream seq, the
 *   global seq and the hash of its last event). It replaces audit_head.
 * - audit_events gains `stream` and `stream_seq`. The existing single chain
 *   becomes stream 0, unchanged: its events keep their seq (stream_seq =
 *   seq) and MACs, and verify checks them exactly as before.
 * - audit_checkpoints: a MACed chain of records, each committing to the
 *   heads of the streams that moved since the one before.
 * - PostgreSQL: seq comes from a sequence (no lock); SQLite, which has one
 *   writer at a time, keeps taking the next number under its write lock.
 */
export async function up(knex: Knex): Promise<void> {
  const pg = knex.client.config.client === 'pg';
  await knex.schema.createTable('audit_streams', (t) => {
    t.increments('id');
    t.string('node', 128).notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('head_seq').notNullable();
    t.bigInteger('head_event').notNullable();
    t.binary('head_hash').notNullable();
    t.bigInteger('checkpoint_seq').notNullable().defaultTo(0);
    t.bigInteger('closed_at');
  });
  await knex.schema.alterTable('audit_events', (t) => {
    t.integer('stream').notNullable().defaultTo(0);
    t.bigInteger('stream_seq');
  });
  await knex('audit_events').update({ stream_seq: knex.ref('seq') });
  await knex.schema.alterTable('audit_events', (t) => {
    t.unique(['stream', 'stream_seq']);
  });
  await knex.schema.createTable('audit_checkpoints', (t) => {
    t.bigInteger('id').primary();
    t.bigInteger('ts').notNullable();
    t.text('heads').notNullable();
    t.binary('prev_hash').notNullable();
    t.binary('hash').notNullable();
  });
  const head = await knex('audit_head').where({ id: 1 }).first();
  if (head) {
    const now = Date.now();
    await knex('audit_streams').insert({
      id: 0,
      node: 'single chain (before streams)',
      created_at: now,
      head_seq: head.seq,
      head_event: head.seq,
      head_hash: head.hash,
      checkpoint_seq: 0,
      closed_at: now,
    });
  }
  await knex.schema.dropTable('audit_head');
  if (pg) {
    const { rows } = await knex.raw('select coalesce(max(seq), 0) as max from audit_events');
    await knex.raw('create sequence audit_events_seq');
    if (Number(rows[0].max) > 0) await knex.raw("select setval('audit_events_seq', ?)", [Number(rows[0].max)]);
  }
}

export async function down(knex: Knex): Promise<void> {
  // Back to the single chain: only possible while no stream but 0 holds events (a failed restore
  // undoing its migrations, a vault that never ran this release).
  const other = await knex('audit_events').where('stream', '<>', 0).first();
  if (other)
    throw new Error('the audit streams migration cannot be undone once other streams hold events: restore a backup made before it');
  await knex.schema.createTable('audit_head', (t) => {
    t.integer('id').primary();
    t.bigInteger('seq').notNullable();
    t.binary('hash').notNullable();
  });
  const s0 = await knex('audit_streams').where({ id: 0 }).first();
  if (s0) await knex('audit_head').insert({ id: 1, seq: s0.head_seq, hash: s0.head_hash });
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropUnique(['stream', 'stream_seq']);
  });
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropColumn('stream_seq');
    t.dropColumn('stream');
  });
  await knex.schema.dropTable('audit_checkpoints');
  await knex.schema.dropTable('audit_streams');
  if (knex.client.config.client === 'pg') await knex.raw('drop sequence if exists audit_events_seq');
}

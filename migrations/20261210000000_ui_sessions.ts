import type { Knex } from 'knex';

/**
 * Web UI sessions (docs/ui.md). A session is a child token of the token the
 * user logged in with; its row here holds what the token table cannot: when
 * the session was last used (the idle timeout, shared by every server on one
 * database) and who it acts for. No token string or hash is stored here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('ui_sessions', (t) => {
    t.text('token_id').primary().references('id').inTable('tokens').onDelete('CASCADE');
    t.text('parent_id').notNullable();
    t.bigInteger('created_at').notNullable();
    t.bigInteger('last_seen_at').notNullable();
    t.bigInteger('idle_ms').notNullable();
    t.index(['last_seen_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('ui_sessions');
}

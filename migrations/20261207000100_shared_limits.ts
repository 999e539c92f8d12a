import type { Knex } from 'knex';

/**
 * Limits shared by every server on one database (used on PostgreSQL; on
 * SQLite the limits stay in process and these tables stay empty).
 *
 * auth_failures: failed authentications per client address in the window
 * that started at window_start (epoch ms, the first failure's time).
 * rate_limits: requests per client address per fixed window (window_start:
 * a multiple of the window length), as claimed by the servers: `used` is the
 * sum of every claim, `last_grant` what the latest claim got.
 *
 * Both hold only recent rows: the servers delete windows that have ended.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('auth_failures', (t) => {
    t.text('ip').primary();
    t.bigInteger('window_start').notNullable();
    t.integer('failures').notNullable();
    t.index(['window_start']);
  });
  await knex.schema.createTable('rate_limits', (t) => {
    t.text('ip').notNullable();
    t.bigInteger('window_start').notNullable();
    t.integer('used').notNullable();
    t.integer('last_grant').notNullable();
    t.primary(['ip', 'window_start']);
    t.index(['window_start']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rate_limits');
  await knex.schema.dropTableIfExists('auth_failures');
}

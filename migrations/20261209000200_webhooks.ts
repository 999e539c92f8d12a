import type { Knex } from 'knex';

/**
 * Webhooks (docs/webhooks.md): subscriptions, and the outbox of deliveries
 * that the audit log fills in the same transaction as the events they
 * announce. A payload names projects, envs and keys, never a value. A
 * webhook's signing secret is not stored: it is derived from a wrapped key
 * (purpose `webhook`) and the webhook's salt.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhooks', (t) => {
    t.text('id').primary();
    t.text('project');
    t.text('url').notNullable();
    t.text('events').notNullable();
    t.text('description');
    t.text('salt').notNullable();
    t.bigInteger('created_at').notNullable();
    t.text('created_by').notNullable();
  });
  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.text('webhook_id').notNullable().references('id').inTable('webhooks').onDelete('CASCADE');
    t.text('event_id').notNullable();
    t.text('event_type').notNullable();
    t.text('payload').notNullable();
    t.bigInteger('created_at').notNullable();
    t.text('status').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.bigInteger('next_attempt_at').notNullable();
    t.integer('last_status');
    t.text('last_error');
    t.bigInteger('last_attempt_at');
    t.bigInteger('delivered_at');
    t.text('lease_holder');
    t.bigInteger('lease_until');
    t.unique(['webhook_id', 'event_id']);
    t.index(['status', 'next_attempt_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webhook_deliveries');
  await knex.schema.dropTableIfExists('webhooks');
}

import type { Knex } from 'knex';

/**
 * Secret lifecycle (docs/lifecycle.md): one optional policy row per secret.
 * rotate_every_ms: the secret is due that long after its current version
 * was written (secrets.updated_at). expires_at applies to the version that
 * was current when it was set (expires_version); a newer version is not
 * bound by it. generator: JSON {charset, length} of a generated secret;
 * with auto, the server writes a new generated version when it is due.
 * reminded_due_at: the due time a secret.rotation_due event was written for
 * (one per due period). Existing secrets get no row: no policy.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('secret_policies', (t) => {
    t.integer('secret_id').primary().references('id').inTable('secrets').onDelete('CASCADE');
    t.bigInteger('rotate_every_ms');
    t.bigInteger('expires_at');
    t.integer('expires_version');
    t.text('generator');
    t.boolean('auto').notNullable().defaultTo(false);
    t.bigInteger('reminded_due_at');
    t.bigInteger('updated_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('secret_policies');
}

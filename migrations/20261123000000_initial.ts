import type { Knex } from 'knex';

// Times are epoch milliseconds in bigint columns on both engines.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meta', (t) => {
    t.string('key', 64).primary();
    t.text('value').notNullable();
  });
  await knex.schema.createTable('keys', (t) => {
    t.increments('id').primary();
    t.string('purpose', 32).notNullable();
    t.string('scope', 128).notNullable();
    t.integer('version').notNullable();
    t.binary('wrapped').notNullable();
    t.string('mk_fingerprint', 32).notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['purpose', 'scope', 'version']);
  });
  await knex.schema.createTable('projects', (t) => {
    t.increments('id').primary();
    t.string('name', 63).notNullable().unique();
    t.integer('dek_version').notNullable().defaultTo(1);
    t.bigInteger('created_at').notNullable();
  });
  await knex.schema.createTable('environments', (t) => {
    t.increments('id').primary();
    t.integer('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
    t.string('name', 63).notNullable();
    t.bigInteger('revision').notNullable().defaultTo(0);
    t.bigInteger('created_at').notNullable();
    t.unique(['project_id', 'name']);
  });
  await knex.schema.createTable('secrets', (t) => {
    t.increments('id').primary();
    t.integer('env_id').notNullable().references('id').inTable('environments').onDelete('CASCADE');
    t.string('name', 256).notNullable();
    t.integer('version').notNullable();
    t.boolean('deleted').notNullable().defaultTo(false);
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['env_id', 'name']);
  });
  await knex.schema.createTable('secret_versions', (t) => {
    t.bigIncrements('id').primary();
    t.integer('secret_id').notNullable().references('id').inTable('secrets').onDelete('CASCADE');
    t.integer('version').notNullable();
    t.binary('nonce');
    t.binary('ciphertext');
    t.integer('dek_version');
    t.boolean('deleted').notNullable().defaultTo(false);
    t.string('created_by', 64).notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['secret_id', 'version']);
  });
  await knex.schema.createTable('tokens', (t) => {
    t.string('id', 32).primary();
    t.string('name', 128).notNullable();
    t.text('description').notNullable().defaultTo('');
    t.binary('hash').notNullable();
    t.text('scopes').notNullable();
    t.string('parent_id', 32).references('id').inTable('tokens');
    t.text('cidrs').notNullable().defaultTo('[]');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at');
    t.bigInteger('revoked_at');
    t.bigInteger('last_used_at');
    t.unique(['hash']);
    t.index(['parent_id']);
  });
  await knex.schema.createTable('audit_events', (t) => {
    t.bigInteger('seq').primary();
    t.bigInteger('ts').notNullable();
    t.string('actor_id', 32).notNullable();
    t.string('actor_name', 128).notNullable();
    t.string('action', 64).notNullable();
    t.string('project', 63);
    t.string('env', 63);
    t.text('target').notNullable();
    t.string('outcome', 16).notNullable();
    t.string('ip', 64);
    t.string('request_id', 64);
    t.text('detail').notNullable();
    t.binary('prev_hash').notNullable();
    t.binary('hash').notNullable();
    t.index(['ts']);
  });
  // One row: the chain head. Writers lock it (FOR UPDATE on PostgreSQL) so
  // concurrent processes append one at a time with no fork and no gap.
  await knex.schema.createTable('audit_head', (t) => {
    t.integer('id').primary();
    t.bigInteger('seq').notNullable();
    t.binary('hash').notNullable();
  });
  await knex.schema.createTable('leases', (t) => {
    t.string('name', 64).primary();
    t.string('holder', 64).notNullable();
    t.bigInteger('expires_at').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of [
    'leases',
    'audit_head',
    'audit_events',
    'tokens',
    'secret_versions',
    'secrets',
    'environments',
    'projects',
    'keys',
    'meta',
  ]) {
    await knex.schema.dropTableIfExists(t);
  }
}

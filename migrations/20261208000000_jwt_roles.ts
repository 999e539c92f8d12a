import type { Knex } from 'knex';

/**
 * JWT auth roles (machine identity, docs/machine-identity.md): a workload
 * that presents a JWT its issuer signed (a CI job's ID token, a Kubernetes
 * service-account token) gets a short-lived Hush token with the role's
 * scopes. Claims, scopes and key sources are JSON text; a JWKS or PEM key
 * given inline is public key material, stored as given.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('jwt_roles', (t) => {
    t.text('name').primary();
    t.text('issuer').notNullable();
    t.text('audience').notNullable();
    t.text('scopes').notNullable();
    t.bigInteger('ttl_ms').notNullable();
    t.text('bound_claims').notNullable();
    t.text('bound_subject');
    t.text('required_claims').notNullable();
    t.text('jwks_url');
    t.text('jwks');
    t.text('public_key');
    t.bigInteger('created_at').notNullable();
    t.text('created_by').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('jwt_roles');
}

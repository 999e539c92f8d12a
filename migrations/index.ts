import type { Knex } from 'knex';
import * as initial from './20261123000000_initial.js';
import * as auditStreams from './20261207000000_audit_streams.js';
import * as sharedLimits from './20261207000100_shared_limits.js';
import * as jwtRoles from './20261208000000_jwt_roles.js';
import * as secretPolicies from './20261208120000_secret_policies.js';
import * as envHistory from './20261209000000_env_history.js';
import * as webhooks from './20261209000200_webhooks.js';
import * as uiSessions from './20261210000000_ui_sessions.js';

type Migration = { up: (k: Knex) => Promise<void>; down: (k: Knex) => Promise<void> };

/** Migrations are listed here (not discovered on disk) so the compiled package finds them wherever it is installed. */
const MIGRATIONS: [string, Migration][] = [
  ['20261123000000_initial', initial],
  ['20261207000000_audit_streams', auditStreams],
  ['20261207000100_shared_limits', sharedLimits],
  ['20261208000000_jwt_roles', jwtRoles],
  ['20261208120000_secret_policies', secretPolicies],
  ['20261209000000_env_history', envHistory],
  ['20261209000200_webhooks', webhooks],
  ['20261210000000_ui_sessions', uiSessions],
];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: () => Promise.resolve(MIGRATIONS),
  getMigrationName: (m) => m[0],
  getMigration: (m) => Promise.resolve(m[1]),
};

import type { MetaStore } from '../../store/key-store.js';
import type { PolicyStore } from '../../store/policy-store.js';
import { overdueSecretCount } from '../secret/lifecycle-service.js';

export interface HealthServiceDeps {
  meta: Pick<MetaStore, 'get'>;
  policies: Pick<PolicyStore, 'countDue'>;
}

/** What GET /v1/sys/health reports from the database. Needs no key: it answers while sealed too. */
export function healthServiceFactory({ meta, policies }: HealthServiceDeps) {
  return {
    /**
     * Read from the database, so every server sharing it reports the same
     * backup state, and a node that cannot reach it reports itself unhealthy.
     */
    async facts(now = Date.now()): Promise<{ lastBackupAt: string | null; lastBackupError: string | null; overdueSecrets: number }> {
      const lastBackupAt = await meta.get('backup_last_success');
      const lastBackupError = await meta.get('backup_last_error');
      return { lastBackupAt, lastBackupError, overdueSecrets: await overdueSecretCount(policies, now) };
    },
  };
}
export type HealthService = ReturnType<typeof healthServiceFactory>;

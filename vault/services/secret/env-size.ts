import { TAG_BYTES } from '../../crypto/aead.js';
import { EnvOverLimitError, EnvTooLargeError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { SecretStore } from '../../store/secret-store.js';

/**
 * The total size cap of an environment (--max-env-bytes): the UTF-8 bytes of
 * its live names and values together. Sizes are read from the ciphertext
 * lengths, so nothing is decrypted to measure. A process environment
 * (execve) holds about 2 MiB at most, so a larger env could never be run,
 * and every bulk read of it would cost its whole size in memory at once.
 */
export function envSizeGuard(secretStore: Pick<SecretStore, 'liveSize'>, maxEnvBytes: number) {
  return {
    /**
     * Refuses a write that would leave the env over the cap. A write that
     * does not grow an env already over it (made with a higher limit) is let
     * through, so such an env can always be shrunk.
     */
    async checkWrite(where: string, envId: number, set: Record<string, string>, del: string[], tx: Tx): Promise<void> {
      const setNames = Object.keys(set);
      const { total, named } = await secretStore.liveSize(envId, [...setNames, ...del], TAG_BYTES, tx);
      let next = total - named;
      for (const n of setNames) next += Buffer.byteLength(n, 'utf8') + Buffer.byteLength(set[n], 'utf8');
      if (next > maxEnvBytes && next > total) {
        throw new EnvTooLargeError(
          `environment ${where} would hold ${next} bytes of names and values; the limit is ${maxEnvBytes} ` +
            `bytes (--max-env-bytes); it holds ${total} now`,
          { details: { size: next, current: total, limit: maxEnvBytes } },
        );
      }
    },
    /** A bulk read holds the whole env in memory: an env over the cap is refused before any value is read. */
    async checkRead(where: string, envId: number, tx: Tx): Promise<void> {
      const { total } = await secretStore.liveSize(envId, [], TAG_BYTES, tx);
      if (total > maxEnvBytes) {
        throw new EnvOverLimitError(
          `environment ${where} holds ${total} bytes of names and values, over the limit of ` +
            `${maxEnvBytes} bytes (--max-env-bytes): read its secrets one by one and delete some, or raise the limit`,
          { details: { size: total, limit: maxEnvBytes } },
        );
      }
    },
  };
}

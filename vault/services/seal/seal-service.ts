import {
  openMasterKey,
  openWithPassphrase,
  openWithShares,
  parseSealRecord,
  parseShare,
  rewrapSealedMaster,
  type SealRecord,
  type UnsealKey,
} from '../../crypto/seal.js';
import type { MasterKey } from '../../crypto/keyring.js';
import { ConfigError, InvalidRequestError, InvalidShareError, MasterKeyChangedError } from '../../errors.js';
import type { Tx } from '../../store/db.js';
import type { MetaStore } from '../../store/key-store.js';
import type { MasterKeySource } from '../key/key-service.js';

/** Where the seal record lives (the meta table; absent: a `file` seal, the master key comes from a file or the environment). */
export const SEAL_META_KEY = 'seal';
/** Bumped by `operator seal --all`: every node that was unsealed under an older value seals itself. */
export const SEAL_GENERATION_KEY = 'seal_generation';

export async function readSealRecord(meta: MetaStore, tx?: Tx): Promise<SealRecord | null> {
  const json = await meta.get(SEAL_META_KEY, tx);
  return json === null ? null : parseSealRecord(json);
}

export async function writeSealRecord(meta: MetaStore, record: SealRecord, tx: Tx): Promise<void> {
  await meta.set(SEAL_META_KEY, JSON.stringify(record), tx);
}

export interface SealStatus {
  sealed: boolean;
  type: 'file' | SealRecord['type'];
  progress: number;
  threshold: number;
}

export type UnsealStep =
  { done: false; progress: number; threshold: number } | { done: true; mk: MasterKey; key: UnsealKey; record: SealRecord };

/**
 * Collects unseal shares (or one passphrase) until the master key opens.
 * One submission at a time. Progress lives in this process only (each node
 * of a cluster is unsealed on its own, as in Vault); the shares are held as
 * bytes and zeroed when the set completes or is reset, never logged.
 *
 * - A share that is malformed, mistyped (checksum), of another vault or
 *   share set, or already given: InvalidShareError, progress unchanged.
 * - A complete set that does not open the master key: UnsealFailedError,
 *   progress reset to 0.
 */
export function unsealProgressFactory(readRecord: () => Promise<SealRecord | null>) {
  let pending: { index: number; bytes: Uint8Array }[] = [];
  let pendingSet: string | null = null;
  let threshold = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = queue.then(fn, fn);
    queue = p.catch(() => undefined);
    return p;
  };

  function reset(): void {
    for (const p of pending) p.bytes.fill(0);
    pending = [];
    pendingSet = null;
  }

  async function record(): Promise<SealRecord> {
    const r = await readRecord();
    if (!r) throw new ConfigError('this vault has no seal record: its master key comes from a file or HUSH_MASTER_KEY');
    threshold = r.threshold;
    // A rekey since the last share: what was collected belongs to the old set.
    if (pendingSet !== null && pendingSet !== r.setId) reset();
    return r;
  }

  return {
    submitShare: (text: string): Promise<UnsealStep> =>
      serial(async () => {
        const r = await record();
        if (r.type !== 'shamir') throw new InvalidRequestError('this vault is sealed with a passphrase: send {"passphrase"}, not a share');
        const share = await parseShare(text, r);
        if (pending.some((p) => p.index === share.index)) {
          share.bytes.fill(0);
          throw new InvalidShareError(`this share was already given; progress unchanged (${pending.length} of ${r.threshold})`);
        }
        pending.push(share);
        pendingSet = r.setId;
        if (pending.length < r.threshold) return { done: false, progress: pending.length, threshold: r.threshold };
        try {
          const { mk, key } = await openWithShares(
            r,
            pending.map((p) => p.bytes),
          );
          return { done: true, mk, key, record: r };
        } finally {
          reset();
        }
      }),

    submitPassphrase: (passphrase: string): Promise<UnsealStep> =>
      serial(async () => {
        const r = await record();
        if (r.type !== 'passphrase')
          throw new InvalidRequestError(
            `this vault is sealed with ${r.threshold} of ${r.shares} unseal shares: send {"share"}, not a passphrase`,
          );
        const { mk, key } = await openWithPassphrase(r, passphrase);
        return { done: true, mk, key, record: r };
      }),

    reset,
    get progress() {
      return pending.length;
    },
    get threshold() {
      return threshold;
    },
    /** Reads the record once at start, so health can name the threshold before any share arrives. */
    async load(): Promise<SealRecord | null> {
      const r = await readRecord();
      if (r) threshold = r.threshold;
      return r;
    },
  };
}
export type UnsealProgress = ReturnType<typeof unsealProgressFactory>;

/**
 * The seal as a master-key source, for a server that is unsealed: when
 * another node rotates the master key, this one opens the new wrapped key
 * in the seal record with the unseal key it holds (key-service catchUp).
 * After a rekey it cannot: it says so, and keeps the keys it has.
 */
export function sealedKeySource(meta: MetaStore, setId: string, key: UnsealKey): MasterKeySource {
  return {
    where: "the vault's seal record",
    rereadable: true,
    async load() {
      const r = await readSealRecord(meta);
      if (!r || r.setId !== setId)
        throw new MasterKeyChangedError(
          'the seal was rekeyed after this server was unsealed: seal it and unseal it with the new shares or passphrase',
        );
      return openMasterKey(r, key);
    },
  };
}

/** The rotation hook of a sealed vault: the new master key goes into the seal record in the rotation's transaction. */
export function sealRotationHook(meta: MetaStore, setId: string, key: UnsealKey) {
  return {
    async rewrap(newMk: MasterKey, tx: Tx): Promise<void> {
      const r = await readSealRecord(meta, tx);
      if (!r || r.setId !== setId) {
        throw new MasterKeyChangedError(
          'the seal was rekeyed after this server was unsealed: seal it and unseal it with the new shares or passphrase before rotating the master key',
        );
      }
      await writeSealRecord(meta, rewrapSealedMaster(r, key, newMk), tx);
    },
  };
}

import type { FastifyBaseLogger } from 'fastify';
import type { MasterKey } from './crypto/keyring.js';
import type { UnsealKey } from './crypto/seal.js';
import { buildKeyed, sealableContainer, type Base, type Container, type Keyed } from './container.js';
import { HushError, NotInitializedError, RateLimitedError } from './errors.js';
import type { AuditContext, AuditInput } from './services/audit/audit-service.js';
import type { MasterKeySource } from './services/key/key-service.js';
import {
  readSealRecord,
  SEAL_GENERATION_KEY,
  sealedKeySource,
  sealRotationHook,
  unsealProgressFactory,
  type SealStatus,
} from './services/seal/seal-service.js';
import { migrate, transaction, type Tx } from './store/db.js';

/** How often an unsealed node looks for `operator seal --all` (the bound docs/keys.md states). */
export const SEAL_ALL_POLL_MS = 1000;
/** How long a seal waits for its own audit event and last checkpoint before it drops the keys anyway. */
const SEAL_AUDIT_WAIT_MS = 2000;
/** Unseal attempts kept (in memory) until the vault is unsealed and they can be MACed into the audit log. */
const MAX_PENDING_ATTEMPTS = 1000;
/** Unseal submissions waiting their turn: beyond this, 429. */
const MAX_UNSEAL_QUEUE = 8;
/**
 * Passphrase attempts, from all addresses together: a bucket of 4 that
 * refills at 2 a second. Each costs an Argon2id derivation (about 0.2 s of
 * CPU, on the event loop), so a flood from many addresses can take at most
 * about 40% of a core; the rest get 429 at once.
 */
const PASSPHRASE_BURST = 4;
const PASSPHRASE_PER_S = 2;

export interface RuntimeTimers {
  /** Started when the vault opens, stopped when it seals: each returns its stop function. */
  onOpen: ((k: Keyed) => () => void)[];
}

/**
 * The vault as this process holds it: sealed (no key in memory, every keyed
 * service throws SealedError) or open (a set of keyed services built around
 * the master key). Opening builds them; sealing drops them and wipes the
 * key bytes. The HTTP layer sees one container throughout
 * (container.sealableContainer) and an epoch that changes on every seal.
 */
export function vaultRuntime(deps: { base: Base; log: FastifyBaseLogger; timers: RuntimeTimers }) {
  const { base, log } = deps;
  const {
    db,
    stores: { meta },
  } = base;
  let current: { keyed: Keyed; key: UnsealKey | null; generation: string | null; stops: (() => void)[] } | null = null;
  let epoch = 0;
  const attempts: { ctx: AuditContext; input: AuditInput }[] = [];
  let attemptsDropped = 0;
  const progress = unsealProgressFactory(() => readSealRecord(meta));
  let sealType: SealStatus['type'] = 'file';
  let sealing: Promise<unknown> | null = null;
  /** An open (verify, migrate, build) in progress: a seal that arrives meanwhile waits for it, then seals. */
  let opening: Promise<unknown> | null = null;
  /** Unseal submissions run one at a time, opening included, so two complete sets never open the vault twice. */
  let unsealQueue: Promise<unknown> = Promise.resolve();
  let unsealWaiting = 0;
  const sealListeners: (() => void)[] = [];
  let passTokens = PASSPHRASE_BURST;
  let passAt = Date.now();
  function takePassphraseAttempt(): void {
    const now = Date.now();
    passTokens = Math.min(PASSPHRASE_BURST, passTokens + ((now - passAt) / 1000) * PASSPHRASE_PER_S);
    passAt = now;
    if (passTokens < 1) throw new RateLimitedError('too many passphrase attempts on this server right now; retry in a second');
    passTokens -= 1;
  }

  const container: Container & { readonly epoch: number } = Object.defineProperty(
    sealableContainer(base, () => current?.keyed ?? null),
    'epoch',
    { get: () => epoch, enumerable: true },
  ) as Container & { epoch: number };

  /** Verifies the key check, migrates, builds the keyed services and starts their timers. */
  async function open(
    mk: MasterKey,
    source: MasterKeySource | undefined,
    sealed: { key: UnsealKey; setId: string } | null,
  ): Promise<Keyed> {
    const keyed = buildKeyed(base, mk, source, sealed ? sealRotationHook(meta, sealed.setId, sealed.key) : null);
    try {
      await keyed.keys.verify();
      await migrate(db);
    } catch (e) {
      keyed.keys.drop();
      throw e;
    }
    const generation = await meta.get(SEAL_GENERATION_KEY);
    const stops = deps.timers.onOpen.map((start) => start(keyed));
    stops.push(watchSealAll(generation));
    keyed.audit.startCheckpoints();
    current = { keyed, key: sealed?.key ?? null, generation, stops };
    return keyed;
  }

  /** Seals this node when another one runs `operator seal --all` (polls the generation in the meta table). */
  function watchSealAll(generation: string | null): () => void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || !current) return;
      busy = true;
      meta
        .get(SEAL_GENERATION_KEY)
        .then(
          async (g) => {
            if (current && g !== generation) {
              log.warn({ generation: g }, 'another node sealed every node (operator seal --all): sealing this one');
              await seal({ actorId: 'system', actorName: 'system', ip: null, requestId: null }, { cluster: 'followed' });
            }
          },
          () => undefined,
        )
        .finally(() => {
          busy = false;
        });
    }, SEAL_ALL_POLL_MS);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** `operator seal --all`: every node unsealed under an older generation seals itself (watchSealAll). */
  async function bumpGeneration(tx: Tx): Promise<void> {
    const g = Number((await meta.get(SEAL_GENERATION_KEY, tx)) ?? '0');
    await meta.set(SEAL_GENERATION_KEY, String((Number.isFinite(g) ? g : 0) + 1), tx);
  }

  function noteAttempt(ctx: AuditContext, input: AuditInput): void {
    if (attempts.length >= MAX_PENDING_ATTEMPTS) {
      attempts.shift();
      attemptsDropped++;
    }
    attempts.push({ ctx, input: { ...input, detail: { ...input.detail, at: new Date().toISOString() } } });
  }

  /**
   * Seals: new requests answer 503 at once (the epoch moves, so a read in
   * flight has its response replaced), the seal is audited and the last
   * checkpoint written (bounded wait), then every key is wiped.
   */
  async function seal(ctx: AuditContext, opts: { cluster?: 'all' | 'followed' } = {}): Promise<{ sealed: true; already: boolean }> {
    if (sealing) {
      await sealing;
      return { sealed: true, already: true };
    }
    // An unseal finishing right now: the seal applies to what it opens.
    while (!current && opening) await opening.catch(() => undefined);
    // Read again: another seal may have started while this one waited (TypeScript keeps the narrowing from above).
    const started = sealing as Promise<unknown> | null;
    if (started) {
      await started;
      return { sealed: true, already: true };
    }
    const cur = current;
    if (!cur) return { sealed: true, already: true };
    current = null;
    epoch++;
    progress.reset();
    for (const fn of sealListeners) {
      try {
        fn();
      } catch (e) {
        log.error({ err: { message: (e as Error).message } }, 'a seal listener failed');
      }
    }
    const done = (async () => {
      for (const stop of cur.stops) stop();
      const audited = (async () => {
        await cur.keyed.audit.run(ctx, async (tx, record) => {
          if (opts.cluster === 'all') await bumpGeneration(tx);
          await record({ action: 'vault.seal', outcome: 'ok', detail: { message: 'sealed', cluster: opts.cluster ?? null } });
        });
        await cur.keyed.audit.close();
      })();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), SEAL_AUDIT_WAIT_MS);
      });
      const r = await Promise.race([
        audited.then(
          () => 'ok' as const,
          (e: Error) => e,
        ),
        late,
      ]).finally(() => clearTimeout(timer));
      if (r !== 'ok')
        log.error(
          { err: { message: r === 'late' ? `no answer within ${SEAL_AUDIT_WAIT_MS} ms` : r.message } },
          'sealed, but the seal event could not be written to the audit log',
        );
      cur.keyed.keys.drop();
      cur.keyed.valueCache?.clear();
      cur.key?.wipe();
      // A seal --all must reach the other nodes even when this node's audit write failed.
      if (opts.cluster === 'all' && r !== 'ok') {
        await transaction(db, bumpGeneration).catch((e: Error) =>
          log.error({ err: { message: e.message } }, 'seal --all: the other nodes could not be told'),
        );
      }
      log.warn({ by: ctx.actorName, ip: ctx.ip, cluster: opts.cluster ?? null }, 'vault sealed: keys dropped');
    })();
    sealing = done;
    try {
      await done;
    } finally {
      sealing = null;
    }
    return { sealed: true, already: false };
  }

  /** Writes the unseal attempts held while sealed, then the unseal itself. */
  async function recordUnseal(keyed: Keyed, ctx: AuditContext, detail: Record<string, unknown>): Promise<void> {
    const held = attempts.splice(0);
    const dropped = attemptsDropped;
    attemptsDropped = 0;
    // Each attempt with its own address and request id; the time it was made is in `at` (events are dated when written).
    for (const a of held) await keyed.audit.record(a.ctx, a.input);
    await keyed.audit.record(ctx, {
      action: 'vault.unseal',
      outcome: 'ok',
      detail: { message: 'unsealed', ...detail, attemptsHeld: held.length, attemptsDropped: dropped },
    });
  }

  async function unsealOnce(
    ctx: AuditContext,
    input: { share?: string; passphrase?: string },
  ): Promise<SealStatus & { unsealed?: boolean }> {
    if (!current && sealing) await sealing;
    if (current) return { ...status(), unsealed: false };
    const kind = input.share !== undefined ? 'share' : 'passphrase';
    try {
      const step =
        input.share !== undefined ? await progress.submitShare(input.share) : await progress.submitPassphrase(input.passphrase ?? '');
      sealType = step.done ? step.record.type : sealType;
      if (!step.done) {
        noteAttempt(ctx, {
          action: 'vault.unseal_attempt',
          outcome: 'ok',
          detail: { message: 'unseal attempt', kind, progress: step.progress, threshold: step.threshold },
        });
        log.info({ ip: ctx.ip, progress: step.progress, threshold: step.threshold }, 'unseal attempt: share accepted');
        return status();
      }
      if (current) {
        step.key.wipe();
        return { ...status(), unsealed: false };
      }
      const source = sealedKeySource(meta, step.record.setId, step.key);
      let keyed: Keyed;
      const o = open(step.mk, source, { key: step.key, setId: step.record.setId });
      opening = o;
      try {
        keyed = await o;
      } catch (e) {
        step.key.wipe();
        throw e;
      } finally {
        opening = null;
      }
      noteAttempt(ctx, {
        action: 'vault.unseal_attempt',
        outcome: 'ok',
        detail: { message: 'unseal attempt', kind, progress: step.record.threshold, threshold: step.record.threshold },
      });
      await recordUnseal(keyed, ctx, { seal: step.record.type });
      log.warn({ ip: ctx.ip, seal: step.record.type }, 'vault unsealed');
      return { ...status(), unsealed: true };
    } catch (e) {
      const code = e instanceof HushError ? e.code : 'error';
      noteAttempt(ctx, {
        action: 'vault.unseal_attempt',
        outcome: 'error',
        detail: { message: 'unseal attempt', kind, code, progress: progress.progress },
      });
      log.warn({ ip: ctx.ip, code }, 'unseal attempt refused');
      throw e;
    }
  }

  function status(): SealStatus {
    return {
      sealed: current === null,
      type: sealType,
      progress: progress.progress,
      threshold: sealType === 'file' ? 0 : progress.threshold,
    };
  }

  return {
    container,
    get epoch() {
      return epoch;
    },
    get sealed() {
      return current === null;
    },

    /** At start: a file seal opens at once; a shamir or passphrase seal waits for `unseal`. */
    async start(fileKey: () => Promise<{ mk: MasterKey; source?: MasterKeySource }>): Promise<'open' | 'sealed'> {
      const record = await progress.load();
      if (record) {
        sealType = record.type;
        log.warn(
          { seal: record.type, threshold: record.threshold, shares: record.shares },
          'vault is sealed: unseal it with `hush operator unseal`',
        );
        return 'sealed';
      }
      const { mk, source } = await fileKey();
      await open(mk, source, null);
      return 'open';
    },

    status,

    /** Reads the seal record again, so a rekey made meanwhile shows (type, threshold). */
    async refresh(): Promise<void> {
      const r = await progress.load();
      if (r) sealType = r.type;
    },

    /**
     * Resolves once the unseal submissions queued so far (any of which may
     * complete a set and open the vault) and an opening in progress have
     * finished: a seal request waits for them, so it applies to what they open.
     */
    async settled(): Promise<void> {
      await unsealQueue;
      while (opening) await opening.catch(() => undefined);
    },

    /** Called at the moment of a seal, before it returns (the HTTP layer cuts streaming responses). */
    onSeal(fn: () => void): void {
      sealListeners.push(fn);
    },

    /**
     * One unseal submission. Every attempt is held for the audit log
     * (written once the vault is unsealed: the MAC key is sealed too) and
     * logged now, without the share or passphrase.
     */
    async unseal(ctx: AuditContext, input: { share?: string; passphrase?: string }): Promise<SealStatus & { unsealed?: boolean }> {
      if (unsealWaiting >= MAX_UNSEAL_QUEUE)
        throw new RateLimitedError('unseal attempts are queued on this server; retry in a few seconds');
      if (input.passphrase !== undefined && sealType === 'passphrase') takePassphraseAttempt();
      unsealWaiting++;
      const run = unsealQueue.then(
        () => unsealOnce(ctx, input),
        () => unsealOnce(ctx, input),
      );
      unsealQueue = run.catch(() => undefined);
      try {
        return await run;
      } finally {
        unsealWaiting--;
      }
    },

    seal,

    reset(): void {
      progress.reset();
    },

    /** At shutdown: timers stop and the audit log gets its last checkpoint; keys are dropped. */
    async close(): Promise<void> {
      const cur = current;
      if (!cur) return;
      current = null;
      for (const stop of cur.stops) stop();
      await cur.keyed.audit.close();
      cur.keyed.keys.drop();
      cur.key?.wipe();
    },

    /** For start-up code that needs the keyed services of an open vault (server.start event). */
    keyed(): Keyed {
      if (!current) throw new NotInitializedError('the vault is not open');
      return current.keyed;
    },
  };
}
export type VaultRuntime = ReturnType<typeof vaultRuntime>;

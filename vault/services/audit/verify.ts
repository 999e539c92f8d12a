import type { AuditStore, StreamRow } from '../../store/audit-store.js';
import type { KeyService } from '../key/key-service.js';

/**
 * Audit verification (hush audit verify, GET /v1/audit/verify): every
 * stream's chain recomputed over raw rows, then the checkpoints and the
 * anchors. Split from audit-service.ts, which appends.
 */

/** The prev_hash of a stream's first event and of the first checkpoint. */
export const GENESIS_HASH = Buffer.alloc(32);

/** What a checkpoint's MAC covers. Domain-separated from events (which start with '{'). */
export function checkpointMaterial(c: { id: number; ts: number; heads: string }): string {
  return `hush-audit-checkpoint\n${c.id}\n${c.ts}\n${c.heads}`;
}

/**
 * `ok` is the verdict. `firstBadSeq` names the first event that does not
 * verify (null when ok, or when only a registry or checkpoint record is at
 * fault and no event can be blamed). `checked` counts the events that
 * verified, in seq order, up to the heads as they stood when verification
 * started; `headSeq` and `headHash` name the last of them (an anchor to keep
 * outside the database). `checkpoint` is the last checkpoint verified,
 * which commits to the head of every stream (the better anchor).
 */
export interface VerifyResult {
  ok: boolean;
  checked: number;
  firstBadSeq: number | null;
  reason: string | null;
  headSeq: number;
  headHash: string | null;
  streams: number;
  checkpoint: { id: number; hash: string } | null;
}

/** An (seq, hash) pair recorded outside the database: a file-sink line, an earlier verify result, a backup. */
export interface AuditAnchor {
  seq: number;
  hash: string;
}
/** A checkpoint (id, hash) recorded outside the database: an earlier verify result. */
export interface CheckpointAnchor {
  id: number;
  hash: string;
}

const VERIFY_PAGE = 2000;
const J = JSON.stringify;

/** Equal bytes; the driver's value may be a Buffer or another Uint8Array. */
function bytesEqual(a: Uint8Array, b: Buffer): boolean {
  return Buffer.isBuffer(a) ? a.equals(b) : Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

/**
 * eventMaterial of a raw row, written from its columns: the same text as
 * material() of the event with the stored target and detail text (the field
 * order of EVENT_FIELDS; a null column is `null`, as canonicalJson writes it).
 */
function rawMaterial(r: any[], seq: number, stream: number, streamSeq: number): string {
  return (
    `{"action":${J(r[4])},"actorId":${J(r[2])},"actorName":${J(r[3])},"detail":${r[11]},"env":${J(r[6] ?? null)},` +
    `"ip":${J(r[9] ?? null)},"outcome":${J(r[8])},"project":${J(r[5] ?? null)},"requestId":${J(r[10] ?? null)},"seq":${seq}${
      stream !== 0 ? `,"stream":${stream},"streamSeq":${streamSeq}` : ''
    },"target":${r[7]},"ts":${Number(r[1])}}`
  );
}

interface StreamState {
  row: StreamRow;
  next: number;
  prev: Buffer;
  lastSeq: number;
  checkpointed: { streamSeq: number; hash: string; checkpoint: number } | null;
}

/**
 * Recomputes every stream's chain up to its head as it stood when the call
 * started (events appended meanwhile are left for the next run), in one
 * pass over the events in seq order, with memory bounded by the number of
 * streams. Names the first seq that does not verify. Then checks the
 * checkpoint chain, and that no stream ends before a checkpoint said it
 * reached (a tail removed together with its head). With `anchor` (an event)
 * or `checkpointAnchor`, also checks that what was recorded outside the
 * database is still there.
 */
export async function verifyLog(
  store: AuditStore,
  keys: Pick<KeyService, 'auditMac'>,
  anchor?: AuditAnchor,
  checkpointAnchor?: CheckpointAnchor,
): Promise<VerifyResult> {
  const mac = await keys.auditMac();
  const matches = mac.matches ?? ((prev: Uint8Array, text: string, expected: Uint8Array) => mac(prev, text).equals(expected));
  // Every event up to a stream's head committed no later than its head row
  // did, so this read fixes a consistent range to check.
  const registry = await store.streams();
  const streams = new Map<number, StreamState>();
  for (const row of registry) streams.set(row.id, { row, next: 1, prev: GENESIS_HASH, lastSeq: 0, checkpointed: null });
  const maxStreamAtStart = registry.length ? registry[registry.length - 1].id : -1;
  const upTo = registry.reduce((m, r) => Math.max(m, r.headEvent), 0);

  let checked = 0;
  let lastSeq = 0;
  let lastHash: Buffer | null = null;
  let checkpointOk: { id: number; hash: string } | null = null;
  const result = (firstBadSeq: number | null, reason: string | null): VerifyResult => ({
    ok: reason === null,
    checked,
    firstBadSeq,
    reason,
    headSeq: lastSeq,
    headHash: reason === null && lastHash ? lastHash.toString('hex') : null,
    streams: registry.length,
    checkpoint: checkpointOk,
  });
  const unregistered = new Set<number>();

  // Raw rows, a page at a time: [seq, ts, actor_id, actor_name, action, project, env, target, outcome, ip, request_id,
  // detail, prev_hash, hash, stream, stream_seq].
  // The material is written from the row's own text: target and detail are
  // MACed exactly as stored, so stored text that is not the canonical text
  // the append MACed (a rewritten spelling of the same value too) fails.
  for await (const page of store.rawPages(upTo, VERIFY_PAGE)) {
    for (let i = 0; i < page.length; i++) {
      const r = page[i];
      const seq = Number(r[0]);
      const stream = Number(r[14]);
      const streamSeq = Number(r[15]);
      const st = streams.get(stream);
      if (!st) {
        if (stream > maxStreamAtStart) continue; // a stream registered after this verify started
        if (!unregistered.has(stream) && (await store.stream(stream))) {
          unregistered.add(stream);
          continue;
        } // registered meanwhile
        return result(seq, `event ${seq} belongs to stream ${stream}, which is not in the stream registry: its registry row was deleted`);
      }
      if (streamSeq > st.row.headSeq) continue; // appended after this verify started
      if (streamSeq !== st.next) {
        if (streamSeq < st.next)
          return result(
            seq,
            `event ${seq} is out of order in stream ${stream}: its place in the stream (#${streamSeq}) ` +
              `comes before event ${st.lastSeq}'s (#${st.next - 1}) (rows were moved or swapped)`,
          );
        const missing = streamSeq - st.next;
        const from = st.lastSeq + 1;
        // When the seqs between the two neighbours are exactly the missing events, they can be named.
        if (seq - st.lastSeq - 1 === missing) {
          return result(
            from,
            missing === 1
              ? `event ${from} is missing (deleted): the table jumps from ${from - 1} to ${seq}`
              : `events ${from}..${seq - 1} are missing (deleted): the table jumps from ${from - 1} to ${seq}`,
          );
        }
        return result(
          from,
          `stream ${stream} lost its events #${st.next}..#${streamSeq - 1} (deleted), between event ${st.lastSeq} and event ${seq}`,
        );
      }
      if (!bytesEqual(r[12], st.prev)) {
        return result(
          seq,
          `event ${seq} does not link to event ${st.lastSeq || seq - 1}: its prev_hash is not that event's hash (rows were moved, swapped or replaced)`,
        );
      }
      // The stored hash, once it matched what the MAC gives, is the link to the next event.
      const stored: Buffer = Buffer.isBuffer(r[13]) ? r[13] : Buffer.from(r[13]);
      if (!matches(st.prev, rawMaterial(r, seq, stream, streamSeq), stored))
        return result(
          seq,
          `event ${seq} was altered or forged: its MAC does not match its contents (or its stored text is not the canonical text the MAC covers)`,
        );
      st.prev = stored;
      st.next++;
      st.lastSeq = seq;
      checked++;
      lastSeq = seq;
      lastHash = stored;
    }
  }

  for (const st of streams.values()) {
    const { row } = st;
    if (st.next - 1 < row.headSeq) {
      const from = st.lastSeq + 1;
      return result(
        from,
        from === row.headEvent
          ? `event ${row.headEvent} is missing: the chain head says the log ends at ${row.headEvent}, the ` +
              `table ends at ${st.lastSeq} (the last event was deleted)`
          : from < row.headEvent
            ? `events ${from}..${row.headEvent} are missing: the chain head says the log ends at ` +
              `${row.headEvent}, the table ends at ${st.lastSeq} (the tail was truncated)`
            : `stream ${row.id} lost its last events #${st.next}..#${row.headSeq}: its head says it ends there, the table ends at event ${st.lastSeq}`,
      );
    }
    if (!row.headHash.equals(st.prev) || (row.headSeq > 0 && row.headEvent !== st.lastSeq)) {
      return result(
        Math.max(row.headEvent, 1),
        `the chain head record of stream ${row.id} does not match event ${row.headEvent}: the head was rewritten`,
      );
    }
  }

  // Rows beyond a head: the highest stream seqs are read BEFORE the heads
  // again. Any honest append that committed by then moved its head at least
  // that far in the same statement, so a row above a re-read head was
  // written outside the chain.
  const ends = await store.streamEnds();
  const now = new Map((await store.streams()).map((r) => [r.id, r]));
  for (const end of ends) {
    const row = now.get(end.stream);
    if (!row) {
      if (end.stream > maxStreamAtStart) continue;
      const first = (await store.firstAfter(end.stream, 0))!;
      return result(
        first,
        `event ${first} belongs to stream ${end.stream}, which is not in the stream registry: its registry row was deleted`,
      );
    }
    if (end.max > row.headSeq) {
      const first = (await store.firstAfter(end.stream, row.headSeq))!;
      return result(first, `event ${first} lies beyond the chain head (${row.headEvent}): it was inserted outside the chain`);
    }
  }

  // The checkpoint chain, and what each checkpoint says a stream reached.
  let prev: Buffer = GENESIS_HASH;
  let expect = 1;
  const reached = new Map<number, { streamSeq: number; hash: string; checkpoint: number }>();
  for await (const c of store.checkpoints()) {
    if (c.id !== expect)
      return result(null, `checkpoint ${expect} is missing (deleted): the checkpoints jump from ${expect - 1} to ${c.id}`);
    if (!c.prevHash.equals(prev))
      return result(null, `checkpoint ${c.id} does not link to checkpoint ${c.id - 1} (checkpoints were moved or replaced)`);
    if (!mac(prev, checkpointMaterial(c)).equals(c.hash))
      return result(null, `checkpoint ${c.id} was altered or forged: its MAC does not match its contents`);
    let heads: [number, number, string][];
    try {
      heads = JSON.parse(c.heads);
    } catch {
      return result(null, `checkpoint ${c.id} was altered: its heads are not JSON`);
    }
    for (const [stream, streamSeq, hash] of heads) reached.set(stream, { streamSeq, hash, checkpoint: c.id });
    prev = c.hash;
    expect++;
    checkpointOk = { id: c.id, hash: c.hash.toString('hex') };
  }
  for (const [stream, r] of reached) {
    const st = streams.get(stream);
    if (!st) {
      if (stream > maxStreamAtStart) continue;
      return result(
        null,
        `stream ${stream} is gone from the registry, but checkpoint ${r.checkpoint} covers its events up to #${r.streamSeq}: the stream was deleted`,
      );
    }
    if (r.streamSeq > st.row.headSeq) {
      return result(
        st.lastSeq + 1,
        `checkpoint ${r.checkpoint} says stream ${stream} reached #${r.streamSeq}, but it ends at ` +
          `#${st.row.headSeq} (event ${st.lastSeq}): its tail was removed together with its head`,
      );
    }
    const at = await store.byStreamSeq(stream, r.streamSeq);
    if (!at || at.hash.toString('hex') !== r.hash) {
      return result(
        at?.seq ?? null,
        `event #${r.streamSeq} of stream ${stream} does not have the hash checkpoint ${r.checkpoint} recorded: the stream was rebuilt`,
      );
    }
  }

  if (anchor) {
    if (anchor.seq > upTo) {
      return result(
        upTo + 1,
        `the anchor names event ${anchor.seq} but the log ends at ${upTo}: events ` +
          `${upTo + 1}..${anchor.seq} were removed together with the head (or the database was restored ` +
          `from an older backup)`,
      );
    }
    const e = await store.get(anchor.seq);
    if (!e || e.hash.toString('hex') !== anchor.hash.toLowerCase()) {
      return result(
        anchor.seq,
        `event ${anchor.seq} does not have the anchored hash: the log was rebuilt from event ` +
          `${anchor.seq} or earlier (or the database was restored from an older backup)`,
      );
    }
  }
  if (checkpointAnchor) {
    const last = checkpointOk?.id ?? 0;
    if (checkpointAnchor.id > last)
      return result(
        null,
        `the anchor names checkpoint ${checkpointAnchor.id} but the checkpoints end at ${last}: later ` +
          `checkpoints were removed (or the database was restored from an older backup)`,
      );
    let found: string | null = null;
    for await (const c of store.checkpoints())
      if (c.id === checkpointAnchor.id) {
        found = c.hash.toString('hex');
        break;
      }
    if (found !== checkpointAnchor.hash.toLowerCase())
      return result(null, `checkpoint ${checkpointAnchor.id} does not have the anchored hash: the checkpoints were rebuilt`);
  }
  return result(null, null);
}

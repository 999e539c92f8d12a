import { Transform } from 'node:stream';

/** What a masked secret is replaced with, whatever its length. */
export const MASK = Buffer.from('*****');

/** Values shorter than this (in characters) are not masked: they would mangle ordinary output. */
export const MIN_MASK_CHARS = 4;

/**
 * Streaming secret masker over raw bytes.
 *
 * Every occurrence of a pattern (the UTF-8 bytes of a secret value of 4 or
 * more characters) is replaced by `*****`: each maximal stretch of bytes
 * covered by occurrences becomes one `*****`, so overlapping or adjacent
 * secrets leak no byte (with "abcd" and "cdef" as secrets, "abcdef" becomes
 * "*****").
 *
 * Chunk boundaries do not matter: bytes that could be the start of a
 * secret are held back until the next chunk decides (never more than the
 * longest pattern minus one byte); everything else is passed on at once, so
 * a prompt without a newline still shows up. Bytes that match nothing,
 * including invalid UTF-8 and binary data, pass through unchanged.
 */
export class Masker {
  /** Patterns by first byte, longest first. */
  private readonly table = new Array<Buffer[] | undefined>(256);
  private tail: Buffer = Buffer.alloc(0);
  /** Bytes at the start of `tail` already covered by a mask that was emitted (-1: no masked run reaches the tail). */
  private carry = -1;
  readonly patternCount: number;

  constructor(
    values: Iterable<string>,
    private readonly replacement: Buffer = MASK,
  ) {
    const seen = new Set<string>();
    for (const v of values) {
      if (typeof v !== 'string' || [...v].length < MIN_MASK_CHARS || seen.has(v)) continue;
      seen.add(v);
      const b = Buffer.from(v, 'utf8');
      (this.table[b[0]] ??= []).push(b);
    }
    for (const list of this.table) list?.sort((a, b) => b.length - a.length);
    this.patternCount = seen.size;
  }

  /** Feeds a chunk; returns the bytes that can be written now. */
  push(chunk: Buffer): Buffer {
    if (this.patternCount === 0) return chunk;
    const buf = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    return this.scan(buf, false);
  }

  /** End of stream: returns whatever was held back, masked. */
  end(): Buffer {
    const buf = this.tail;
    this.tail = Buffer.alloc(0);
    if (buf.length === 0) {
      this.carry = -1;
      return buf;
    }
    return this.scan(buf, true);
  }

  private scan(buf: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    // [0, lit) is emitted or covered. `cover` is the end of the current masked
    // run (-1: none); a match starting at or before it extends the run.
    let cover = this.carry;
    let lit = Math.max(0, this.carry);
    let i = 0;
    scan: for (; i < buf.length; i++) {
      const cands = this.table[buf[i]];
      if (!cands) continue;
      const avail = buf.length - i;
      let full = 0;
      for (const p of cands) {
        if (p.length <= avail) {
          if (buf.compare(p, 0, p.length, i, i + p.length) === 0) {
            full = p.length;
            break;
          }
        } else if (!final && buf.compare(p, 0, avail, i, buf.length) === 0) {
          // A longer secret may start here and continue in the next chunk: hold from here.
          break scan;
        }
      }
      if (full) {
        if (i > cover) {
          const s = Math.max(lit, cover);
          if (i > s) out.push(buf.subarray(s, i));
          out.push(this.replacement);
          lit = i;
        }
        cover = Math.max(cover, i + full);
      }
    }
    const s = Math.max(lit, cover);
    if (i > s) out.push(buf.subarray(s, i));
    // Relative to the new tail: how far the run reaches into it (0: it ends just
    // before it, so a secret right at its start joins the run), or -1 for none.
    this.carry = final || cover < i ? -1 : cover - i;
    this.tail = final ? Buffer.alloc(0) : Buffer.from(buf.subarray(i));
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }
}

/** A Transform that masks `values` in the bytes flowing through it. */
export function maskStream(values: Iterable<string>): Transform {
  const m = new Masker(values);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const out = m.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      cb(null, out.length ? out : undefined);
    },
    flush(cb) {
      const out = m.end();
      cb(null, out.length ? out : undefined);
    },
  });
}

import type { Readable } from 'node:stream';
import { HushError } from '../errors.js';

/** The backup decrypted but its content is not a valid Hush backup (hash, counts, chain, structure). */
export class BackupInvalidError extends HushError {
  constructor(message: string) {
    super('backup_corrupt', 400, message);
  }
}

/**
 * The exact bytes a line was parsed from, with its newline (a last line
 * without one gets one: it hashes as a complete line), kept on the
 * parsed object under this symbol (invisible to JSON.stringify and
 * Object.keys). The body hash is taken over these bytes, so a line is not
 * serialised again to be hashed, and text that is not exactly what a dump
 * writes (duplicate keys, other spellings of a number, whitespace) cannot
 * hash like it.
 */
export const RAW: unique symbol = Symbol('hush.backup.raw');

export type Line = { [k: string]: any; [RAW]?: Buffer };

const NL = Buffer.from('\n');

/** Longest NDJSON line accepted: a secret value is at most a few MiB even with a raised --max-value-bytes. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Parses NDJSON lines from a (decrypted) stream, one array of lines per
 * chunk of the stream (so a consumer pays one await per chunk, not per
 * line). Errors of `plain` (integrity, truncation, signature) are thrown
 * from the iteration, so a consumer that commits only after the loop ends
 * never commits a damaged backup.
 */
export async function* readLineBatches(plain: Readable): AsyncGenerator<Line[]> {
  let parts: Buffer[] = [];
  let partLen = 0;
  let n = 0;
  const parse = (buf: Buffer): Line => {
    n++;
    let v: unknown;
    try {
      v = JSON.parse(buf.toString('utf8'));
    } catch {
      v = undefined;
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BackupInvalidError(`backup line ${n} is not a JSON object`);
    (v as Line)[RAW] = buf;
    return v;
  };
  for await (const chunk of plain as AsyncIterable<string | Buffer>) {
    const b: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const out: Line[] = [];
    let start = 0;
    for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, start)) {
      // With its newline: the body hash takes a line in one update, and JSON.parse skips the trailing whitespace.
      const piece = b.subarray(start, i + 1);
      const line = partLen ? Buffer.concat([...parts, piece]) : piece;
      parts = [];
      partLen = 0;
      start = i + 1;
      if (line.length > 1) out.push(parse(line));
    }
    if (start < b.length) {
      // Copied: the chunk's buffer may be reused by the stream.
      parts.push(Buffer.from(b.subarray(start)));
      partLen += b.length - start;
      if (partLen > MAX_LINE_BYTES) throw new BackupInvalidError(`backup line ${n + 1} is longer than ${MAX_LINE_BYTES} bytes`);
    }
    if (out.length) yield out;
  }
  if (partLen) yield [parse(Buffer.concat([...parts, NL]))];
}

/** readLineBatches, one line at a time. */
export async function* readLines(plain: Readable): AsyncGenerator<Line> {
  for await (const batch of readLineBatches(plain)) yield* batch;
}

/** Lines or batches of lines (arrays), one line at a time, without an await per line for batches. */
export async function* eachBatch(lines: AsyncIterable<Line | Line[]>): AsyncGenerator<Line[]> {
  for await (const x of lines) yield Array.isArray(x) ? x : [x];
}

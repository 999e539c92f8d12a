/** Bridges between Node streams and the web streams openpgp.js reads, with a guard against its stalls. */
import type { Readable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import { BackupCorruptError } from './errors.js';

export function toU8(chunk: unknown): Uint8Array {
  if (typeof chunk === 'string') return new Uint8Array(Buffer.from(chunk, 'utf8'));
  if (chunk instanceof Uint8Array) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('backup streams must carry bytes');
}

/**
 * Safety net against an openpgp.js (6.3) deadlock: with
 * `allowUnauthenticatedStream`, if the decrypted data starts with a
 * streaming-type packet that is not allowed there (e.g. a damaged literal-data
 * tag turning into tag 9/18/20), openpgp.js records the error but never drains
 * that packet's body, so `decrypt()` / the data stream wait forever.
 *
 * The watch fails a wait on openpgp.js when, for `ms`, it made no progress:
 * no input chunk was consumed and no input read is in flight (a slow input is
 * therefore never mistaken for a stall), while we were waiting for output.
 */
export class StallWatch {
  sourceBusy = false;
  private last = Date.now();

  constructor(private readonly ms: number) {}

  progress(): void {
    this.last = Date.now();
  }

  /** Await `p`, rejecting with BackupCorruptError if openpgp.js stalls meanwhile. */
  async guard<T>(p: Promise<T>): Promise<T> {
    this.progress();
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      const check = (): void => {
        const idle = Date.now() - this.last;
        if (!this.sourceBusy && idle >= this.ms) {
          reject(new BackupCorruptError('backup is damaged: decryption stalled on malformed encrypted data'));
        } else {
          timer = setTimeout(check, this.sourceBusy ? this.ms : this.ms - idle);
        }
      };
      timer = setTimeout(check, this.ms);
    });
    try {
      return await Promise.race([p, stalled]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface Source {
  /** Web stream fed from the Node stream, pulled on demand (one chunk buffered). */
  web: ReadableStream<Uint8Array>;
  /** First I/O error of the underlying Node stream, if any. */
  error(): Error | undefined;
}

/**
 * Bridge a Node Readable to a pull-based web ReadableStream. (`Readable.toWeb`
 * is avoided on purpose: on Node 20 it reads ahead without honouring the web
 * stream's backpressure, so it is not memory-bounded.)
 */
export function nodeToWeb(node: Readable, first?: Uint8Array, iterator?: AsyncIterator<unknown>, watch?: StallWatch): Source {
  const it = iterator ?? node[Symbol.asyncIterator]();
  let pending: Uint8Array | undefined = first;
  let ioError: Error | undefined;
  const web = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (pending) {
          controller.enqueue(pending);
          pending = undefined;
          return;
        }
        let r: IteratorResult<unknown>;
        if (watch) watch.sourceBusy = true;
        try {
          r = await it.next();
        } catch (e) {
          ioError = e instanceof Error ? e : new Error('backup input stream failed', { cause: e });
          throw e;
        } finally {
          if (watch) {
            watch.sourceBusy = false;
            watch.progress();
          }
        }
        if (r.done) controller.close();
        else controller.enqueue(toU8(r.value));
      },
      async cancel() {
        try {
          await it.return?.();
        } finally {
          node.destroy();
        }
      },
    },
    { highWaterMark: 1 },
  );
  return { web, error: () => ioError };
}

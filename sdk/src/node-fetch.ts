/**
 * A `fetch` on node:http/https, for the client's `fetch` option.
 *
 * Why it exists:
 * - **Private CAs.** The global fetch (undici) takes no per-call CA; this one
 *   passes `ca` to node:https, so a client can trust an internal certificate
 *   authority (`createClient({ ca })`, HUSH_CA_FILE) without
 *   NODE_EXTRA_CA_CERTS or a dependency.
 * - **Start-up.** Node's global fetch loads its bundled HTTP client on first
 *   use, which costs more than everything else `hush run` does after its
 *   flags are parsed; node:http is part of the runtime already.
 *
 * The client still does all the work (auth, retries, timeouts, error
 * mapping, the fallback cache); this only moves bytes. Bodies are streamed
 * (`res.body`) or read whole (`text()`, `json()`), the AbortSignal is
 * honoured, and anything unusual (a redirect, a non-string request body)
 * goes to the global fetch, so behaviour never differs from it.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** Options of {@link createNodeFetch}. */
export interface NodeFetchOptions {
  /**
   * PEM certificate(s) of certificate authorities to trust for `https:`
   * servers, in addition to Node's bundled public roots.
   */
  ca?: string | string[];
}

class LiteHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}
  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : String(v);
  }
  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }
  forEach(cb: (value: string, key: string) => void): void {
    for (const k of Object.keys(this.raw)) {
      const v = this.get(k);
      if (v !== null) cb(v, k);
    }
  }
  *entries(): IterableIterator<[string, string]> {
    for (const k of Object.keys(this.raw)) {
      const v = this.get(k);
      if (v !== null) yield [k, v];
    }
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** The response body as a web stream, with backpressure (node:stream's adapter costs a module load on every start). */
function webStream(r: IncomingMessage): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        let done = false;
        const fail = (cause: Error) => {
          if (!done) {
            done = true;
            ctrl.error(new TypeError('fetch failed', { cause }));
          }
        };
        r.on('data', (c: Buffer) => {
          if (done) return;
          ctrl.enqueue(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
          if ((ctrl.desiredSize ?? 1) <= 0) r.pause();
        });
        r.on('end', () => {
          if (!done) {
            done = true;
            ctrl.close();
          }
        });
        r.on('error', fail);
        r.on('aborted', () => fail(new Error('response aborted')));
        r.pause();
      },
      pull() {
        r.resume();
      },
      cancel() {
        r.destroy();
      },
    },
    { highWaterMark: 4 },
  );
}

/** A Response over a node:http response; the body is consumed once, as a stream or whole. */
function liteResponse(url: string, r: IncomingMessage): Response {
  let used = false;
  const take = (): Promise<Buffer> => {
    if (used) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    used = true;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve(Buffer.concat(chunks)));
      r.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      r.on('aborted', () => reject(new TypeError('fetch failed', { cause: new Error('response aborted') })));
    });
  };
  let body: ReadableStream<Uint8Array> | null = null;
  const status = r.statusCode ?? 0;
  const res = {
    ok: status >= 200 && status < 300,
    status,
    statusText: r.statusMessage ?? '',
    url,
    redirected: false,
    type: 'basic',
    headers: new LiteHeaders(r.headers),
    get body() {
      if (!body) {
        used = true;
        body = webStream(r);
      }
      return body;
    },
    get bodyUsed() {
      return used;
    },
    text: async () => (await take()).toString('utf8'),
    json: async () => JSON.parse((await take()).toString('utf8')) as unknown,
    arrayBuffer: async () => {
      const b = await take();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
  };
  return res as unknown as Response;
}

function headerRecord(h: RequestInit['headers']): Record<string, string> {
  if (!h) return {};
  if (Array.isArray(h)) return Object.fromEntries(h as [string, string][]);
  // A Headers instance (duck-typed: naming the global Headers would load undici, which this module exists to avoid).
  if (typeof (h as Headers).forEach === 'function') {
    const out: Record<string, string> = {};
    (h as Headers).forEach((v, k) => {
      out[k] = v;
    });
    return out;
  }
  return { ...(h as Record<string, string>) };
}

/** Marks a fetch made by createNodeFetch (it honours Expect: 100-continue). */
export const NODE_FETCH = Symbol.for('hush.nodeFetch');

/**
 * A fetch that serves requests over node:http/https, optionally trusting
 * extra certificate authorities. Pass it as `createClient({ fetch })`, or
 * give `createClient({ ca })`, which builds one for you.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { createClient, createNodeFetch } from 'hush-vault-sdk';
 *
 * const client = createClient({ fetch: createNodeFetch({ ca: readFileSync('/etc/hush/ca.pem', 'utf8') }) });
 * ```
 */
export function createNodeFetch(options: NodeFetchOptions = {}): typeof fetch {
  let agent: Promise<import('node:https').Agent> | null = null;
  const httpsAgent = async () => {
    const https = await import('node:https');
    if (!options.ca) return https.globalAgent;
    // Node's `ca` replaces the default roots; keep them, so a CA is added, never substituted.
    const { rootCertificates } = await import('node:tls');
    const extra = Array.isArray(options.ca) ? options.ca : [options.ca];
    return new https.Agent({ keepAlive: true, ca: [...rootCertificates, ...extra] });
  };
  const nodeFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const body = init.body;
    const secure = url.protocol === 'https:';
    if ((!secure && url.protocol !== 'http:') || (body !== undefined && body !== null && typeof body !== 'string')) {
      return globalThis.fetch(input, init);
    }
    const mod = secure ? await import('node:https') : await import('node:http');
    const viaAgent = secure ? await (agent ??= httpsAgent()) : undefined;
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const res = await new Promise<Response | 'defer'>((resolve, reject) => {
      const headers = headerRecord(init.headers);
      if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
      const req = mod.request(url, { method: init.method ?? 'GET', headers, ...(viaAgent ? { agent: viaAgent } : {}) }, (r) => {
        const status = r.statusCode ?? 0;
        if (status >= 300 && status < 400 && status !== 304) {
          r.resume();
          resolve('defer');
          return;
        }
        resolve(liteResponse(url.href, r));
      });
      const onAbort = () => {
        req.destroy(signal!.reason instanceof Error ? signal!.reason : undefined);
        reject(signal!.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      // With Expect: 100-continue the body waits for the server's go-ahead; an early answer (413) is read instead, and nothing is written.
      // A server that ignores Expect gets the body after a second anyway (as curl does).
      if (typeof body === 'string' && /^100-continue$/i.test(headers.expect ?? headers.Expect ?? '')) {
        const send = () => {
          clearTimeout(wait);
          if (!req.writableEnded && !req.destroyed) req.end(body);
        };
        const wait = setTimeout(send, 1000);
        req.once('continue', send);
        req.once('response', () => clearTimeout(wait));
        req.once('close', () => clearTimeout(wait));
      } else req.end(typeof body === 'string' ? body : undefined);
    });
    return res === 'defer' ? globalThis.fetch(input, init) : res;
  };
  return Object.assign(nodeFetch, { [NODE_FETCH]: true as const });
}

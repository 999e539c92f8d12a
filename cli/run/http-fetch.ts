/**
 * A small `fetch` for the SDK's `fetch` option, on node:http/https.
 *
 * Why: `hush run` is a container entrypoint and its startup cost is paid by
 * every start. Node's global fetch loads its bundled HTTP client (undici) on
 * first use, which costs more than everything else `hush run` does after
 * its flags are parsed; node:http is part of the runtime already. The SDK
 * still does all the work (auth, retries, timeouts, error mapping, the
 * fallback cache); this only moves bytes.
 *
 * It buffers the whole response (secrets are small JSON documents), honours
 * the AbortSignal, and hands anything unusual (a redirect, a streamed body)
 * to the global fetch so behaviour never differs from it.
 */
import type { IncomingHttpHeaders } from 'node:http';

class LiteHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}
  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : String(v);
  }
  has(name: string): boolean { return this.raw[name.toLowerCase()] !== undefined; }
  forEach(cb: (value: string, key: string) => void): void {
    for (const k of Object.keys(this.raw)) { const v = this.get(k); if (v !== null) cb(v, k); }
  }
  *entries(): IterableIterator<[string, string]> {
    for (const k of Object.keys(this.raw)) { const v = this.get(k); if (v !== null) yield [k, v]; }
  }
  [Symbol.iterator](): IterableIterator<[string, string]> { return this.entries(); }
}

function liteResponse(url: string, status: number, statusText: string, headers: IncomingHttpHeaders, body: Buffer): Response {
  let used = false;
  const take = () => {
    if (used) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
    used = true;
    return Promise.resolve(body);
  };
  const res = {
    ok: status >= 200 && status < 300, status, statusText, url, redirected: false, type: 'basic',
    headers: new LiteHeaders(headers), body: null,
    get bodyUsed() { return used; },
    text: async () => (await take()).toString('utf8'),
    json: async () => JSON.parse((await take()).toString('utf8')),
    arrayBuffer: async () => { const b = await take(); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); },
  };
  return res as unknown as Response;
}

function headerRecord(h: RequestInit['headers']): Record<string, string> {
  if (!h) return {};
  if (Array.isArray(h)) return Object.fromEntries(h);
  // A Headers instance (duck-typed: naming the global Headers would load undici, which this module exists to avoid).
  if (typeof (h as Headers).forEach === 'function') {
    const out: Record<string, string> = {};
    (h as Headers).forEach((v, k) => { out[k] = v; });
    return out;
  }
  return { ...(h as Record<string, string>) };
}

/** A fetch that serves plain buffered requests over node:http/https and defers anything else to the global fetch. */
export function createNodeFetch(): typeof fetch {
  const nodeFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const body = init.body;
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || (body !== undefined && body !== null && typeof body !== 'string')) {
      return globalThis.fetch(input, init);
    }
    const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const signal = init.signal ?? undefined;
    if (signal?.aborted) throw signal.reason;
    const res = await new Promise<Response | 'defer'>((resolve, reject) => {
      const headers = headerRecord(init.headers);
      if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
      const req = mod.request(url, { method: init.method ?? 'GET', headers }, (r) => {
        const status = r.statusCode ?? 0;
        if (status >= 300 && status < 400 && status !== 304) { r.resume(); resolve('defer'); return; }
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve(liteResponse(url.href, status, r.statusMessage ?? '', r.headers, Buffer.concat(chunks))));
        r.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      });
      const onAbort = () => { req.destroy(); reject(signal!.reason); };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', (e) => reject(new TypeError('fetch failed', { cause: e })));
      req.end(typeof body === 'string' ? body : undefined);
    });
    if (res === 'defer') return globalThis.fetch(input, init);
    return res;
  };
  return nodeFetch as typeof fetch;
}

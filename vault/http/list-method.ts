import { Duplex } from 'node:stream';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';

/**
 * Vault's LIST method (docs/vault-compat.md).
 *
 * Node's HTTP parser (llhttp) knows a fixed set of methods and refuses
 * `LIST` with 400 before any handler runs; hvac and node-vault send it.
 * Vault defines `LIST /v1/P` as the same request as `GET /v1/P?list=true`,
 * so a front on each connection rewrites exactly that: a request line
 * `LIST /v1/<mount>/...` becomes `GET /v1/<mount>/...?list=true` (or
 * `&list=true`), and nothing else is changed. The parser still checks every
 * byte it checked before.
 *
 * The front follows message boundaries as the parser does (a body by
 * Content-Length or chunked encoding, pipelined and keep-alive requests),
 * so a request line is only ever recognised at the start of a message,
 * never inside a body. Whatever it is not sure about (a head it cannot
 * read, an Upgrade, CONNECT, a Content-Length and Transfer-Encoding
 * together, a coding other than chunked, a line ending without CR, an
 * oversized head) switches the connection to plain pass-through: from then
 * on bytes go to the parser unchanged, and a later LIST gets the parser's
 * 400 as before. It holds back at most the few bytes of "LIST /v1/<mount>/"
 * at the start of a message; everything else is forwarded as it arrives,
 * so the parser's header and request timeouts run as before.
 */

const MAX_HEAD = 64 * 1024;
const MAX_CHUNK_LINE = 4096;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

type State = 'start' | 'match' | 'target' | 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailers' | 'pass';

/** The byte-stream rewriter of one connection (no I/O: feed it bytes, forward what it returns). */
export class ListRewriter {
  private state: State = 'start';
  private readonly match: Buffer;
  private held: Buffer[] = [];
  private heldLen = 0;
  private head: Buffer[] = [];
  private headLen = 0;
  private remaining = 0;
  private querySeen = false;
  private line = Buffer.alloc(0);
  /** The last 3 bytes of the head so far: its end may straddle two chunks. */
  private tail = Buffer.alloc(0);

  /** `mount`: requests under /v1/<mount>/ may use LIST. */
  constructor(mount: string) {
    this.match = Buffer.from(`LIST /v1/${mount}/`);
  }

  /** True once the connection is in pass-through (tests). */
  get passing(): boolean { return this.state === 'pass'; }

  feed(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'pass':
          out.push(chunk.subarray(i));
          i = chunk.length;
          break;
        case 'start': {
          // Empty lines between messages are skipped by the parser too.
          let j = i;
          while (j < chunk.length && (chunk[j] === 13 || chunk[j] === 10)) j++;
          if (j > i) out.push(chunk.subarray(i, j));
          i = j;
          if (i < chunk.length) this.state = 'match';
          break;
        }
        case 'match': {
          // Bytes of the message's start while they can still be "LIST /v1/<mount>/".
          let j = i;
          while (j < chunk.length && this.heldLen + (j - i) < this.match.length && chunk[j] === this.match[this.heldLen + (j - i)]) j++;
          const took = chunk.subarray(i, j);
          this.held.push(took); this.heldLen += took.length;
          i = j;
          if (this.heldLen === this.match.length) {
            const rewritten = Buffer.concat([Buffer.from('GET '), this.match.subarray(5)]);
            this.held = []; this.heldLen = 0;
            out.push(rewritten);
            this.headBytes(rewritten);
            this.querySeen = false;
            this.state = 'target';
          } else if (i < chunk.length) {
            // Not a LIST under the mount: the bytes go on unchanged.
            const held = Buffer.concat(this.held);
            this.held = []; this.heldLen = 0;
            out.push(held);
            this.state = 'head';
            if (!this.headBytes(held)) { this.toPass(); break; }
          }
          break;
        }
        case 'target': {
          let j = i;
          while (j < chunk.length && chunk[j] !== 32 && chunk[j] !== 13 && chunk[j] !== 10) {
            if (chunk[j] === 63) this.querySeen = true;
            j++;
          }
          const part = chunk.subarray(i, j);
          out.push(part);
          this.headBytes(part);
          i = j;
          if (i < chunk.length) {
            if (chunk[i] !== 32) { this.toPass(); break; }
            const suffix = Buffer.from(this.querySeen ? '&list=true' : '?list=true');
            out.push(suffix);
            this.headBytes(suffix);
            this.state = 'head';
          }
          break;
        }
        case 'head': {
          // Forwarded as it comes; kept (bounded) to read the framing headers at its end.
          const tail = this.tail;
          const probe = Buffer.concat([tail, chunk.subarray(i)]);
          const at = probe.indexOf(HEAD_END);
          const end = at === -1 ? chunk.length : i + at + 4 - tail.length;
          const part = chunk.subarray(i, end);
          out.push(part);
          i = end;
          if (!this.headBytes(part)) { this.toPass(); break; }
          if (at !== -1) this.endOfHead(Buffer.concat(this.head));
          break;
        }
        case 'body': {
          const n = Math.min(this.remaining, chunk.length - i);
          out.push(chunk.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = 'start';
          break;
        }
        case 'chunk-size':
        case 'trailers': {
          const j = chunk.indexOf(10, i);
          const end = j === -1 ? chunk.length : j + 1;
          const part = chunk.subarray(i, end);
          out.push(part);
          i = end;
          this.line = Buffer.concat([this.line, part]);
          if (this.line.length > (this.state === 'trailers' ? MAX_HEAD : MAX_CHUNK_LINE)) { this.toPass(); break; }
          if (j !== -1) {
            const line = this.line;
            this.line = Buffer.alloc(0);
            if (line.length < 2 || line[line.length - 2] !== 13) { this.toPass(); break; }
            if (this.state === 'trailers') {
              if (line.length === 2) this.state = 'start';
              else if (line.includes(13) && line.indexOf(13) !== line.length - 2) this.toPass();
            } else {
              const m = /^([0-9A-Fa-f]{1,13})(;[^\r\n]*)?\r\n$/.exec(line.toString('latin1'));
              if (!m) { this.toPass(); break; }
              const size = parseInt(m[1], 16);
              if (size === 0) this.state = 'trailers';
              else { this.remaining = size; this.state = 'chunk-data'; }
            }
          }
          break;
        }
        case 'chunk-data': {
          const n = Math.min(this.remaining, chunk.length - i);
          out.push(chunk.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) { this.state = 'chunk-crlf'; this.remaining = 2; }
          break;
        }
        case 'chunk-crlf': {
          const b = chunk[i];
          out.push(chunk.subarray(i, i + 1));
          i++;
          if (b !== CRLF[2 - this.remaining]) { this.toPass(); break; }
          if (--this.remaining === 0) this.state = 'chunk-size';
          break;
        }
      }
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** Bytes held back at the end of the stream (a message start that never completed). */
  flush(): Buffer {
    const held = Buffer.concat(this.held);
    this.held = []; this.heldLen = 0;
    return held;
  }

  private headBytes(b: Buffer): boolean {
    this.head.push(b);
    this.headLen += b.length;
    this.tail = Buffer.concat([this.tail, b]).subarray(-3);
    return this.headLen <= MAX_HEAD;
  }

  private toPass(): void {
    this.state = 'pass';
    this.head = []; this.headLen = 0; this.tail = Buffer.alloc(0); this.line = Buffer.alloc(0);
  }

  /** The head is complete: how its body is framed decides what comes next. */
  private endOfHead(whole: Buffer): void {
    this.head = []; this.headLen = 0; this.tail = Buffer.alloc(0);
    const text = whole.toString('latin1');
    const lines = text.slice(0, -4).split('\r\n');
    const requestLine = lines[0];
    // A bare LF anywhere, or a request line the parser would read otherwise: not ours to follow.
    if (text.slice(0, -4).replace(/\r\n/g, '').includes('\n') || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.[01]$/.test(requestLine)) return this.toPass();
    const method = requestLine.slice(0, requestLine.indexOf(' '));
    let contentLength: number | null = null;
    let chunked = false;
    let te = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0 || /[\s]/.test(line.slice(0, colon)) || line[0] === ' ' || line[0] === '\t') return this.toPass();
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^[0-9]{1,15}$/.test(value) || contentLength !== null) return this.toPass();
        contentLength = Number(value);
      } else if (name === 'transfer-encoding') {
        if (te || value.toLowerCase() !== 'chunked') return this.toPass();
        te = true; chunked = true;
      } else if (name === 'upgrade' || (name === 'expect' && value.toLowerCase() !== '100-continue')) {
        return this.toPass();
      } else if (name === 'connection' && /(^|,)\s*upgrade\s*(,|$)/i.test(value)) {
        return this.toPass();
      }
    }
    if (method === 'CONNECT' || (chunked && contentLength !== null)) return this.toPass();
    if (chunked) { this.state = 'chunk-size'; this.line = Buffer.alloc(0); return; }
    if (contentLength) { this.remaining = contentLength; this.state = 'body'; return; }
    this.state = 'start';
  }
}

const FRONTED = Symbol('hush.listFront');

/**
 * A connection as the HTTP server sees it: bytes in through a ListRewriter,
 * bytes out unchanged; the socket's address, TLS state and timeouts are the
 * real socket's. Injecting a Duplex through the server's 'connection' event
 * is the documented way to give an HTTP server a connection.
 */
class FrontSocket extends Duplex {
  readonly [FRONTED] = true;
  constructor(private readonly socket: Socket | TLSSocket, private readonly rewriter: ListRewriter) {
    super({ allowHalfOpen: true });
    socket.on('data', (chunk: Buffer) => {
      const out = this.rewriter.feed(chunk);
      if (out.length && !this.push(out)) socket.pause();
    });
    socket.on('end', () => {
      const rest = this.rewriter.flush();
      if (rest.length) this.push(rest);
      this.push(null);
    });
    socket.on('error', (e: Error) => this.destroy(e));
    socket.on('close', () => { if (!this.destroyed) this.destroy(); });
    socket.on('timeout', () => this.emit('timeout'));
    socket.on('drain', () => this.emit('drain'));
  }
  override _read(): void { this.socket.resume(); }
  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (e?: Error | null) => void): void { this.socket.write(chunk, encoding, cb); }
  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], cb: (e?: Error | null) => void): void {
    this.socket.cork();
    for (const c of chunks.slice(0, -1)) this.socket.write(c.chunk, c.encoding);
    this.socket.write(chunks[chunks.length - 1].chunk, chunks[chunks.length - 1].encoding, cb);
    this.socket.uncork();
  }
  override _final(cb: (e?: Error | null) => void): void { this.socket.end(cb); }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void { this.socket.destroy(err ?? undefined); cb(err); }

  get remoteAddress() { return this.socket.remoteAddress; }
  get remotePort() { return this.socket.remotePort; }
  get remoteFamily() { return this.socket.remoteFamily; }
  get localAddress() { return this.socket.localAddress; }
  get localPort() { return this.socket.localPort; }
  get bytesRead() { return this.socket.bytesRead; }
  get bytesWritten() { return this.socket.bytesWritten; }
  get encrypted() { return (this.socket as TLSSocket).encrypted; }
  get authorized() { return (this.socket as TLSSocket).authorized; }
  get alpnProtocol() { return (this.socket as TLSSocket).alpnProtocol; }
  getPeerCertificate(detailed?: boolean) { return (this.socket as TLSSocket).getPeerCertificate?.(detailed as true); }
  address() { return this.socket.address(); }
  setTimeout(ms: number, cb?: () => void): this { this.socket.setTimeout(ms); if (cb) this.once('timeout', cb); return this; }
  setNoDelay(v?: boolean): this { this.socket.setNoDelay(v); return this; }
  setKeepAlive(enable?: boolean, delay?: number): this { this.socket.setKeepAlive(enable, delay); return this; }
  ref(): this { this.socket.ref(); return this; }
  unref(): this { this.socket.unref(); return this; }
  destroySoon(): void { if (this.writable) this.end(); else this.destroy(); }
}

/**
 * Puts the LIST front before the HTTP parser of `server` (an http or https
 * server from Fastify, before it listens): the server's own connection
 * listener is given a FrontSocket instead of the socket.
 */
export function acceptListMethod(server: Server, mount: string): void {
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  const listeners = server.listeners(event) as ((s: unknown) => void)[];
  server.removeAllListeners(event);
  server.on(event, (socket: Socket) => {
    if ((socket as unknown as Record<symbol, unknown>)[FRONTED]) { for (const l of listeners) l.call(server, socket); return; }
    const front = new FrontSocket(socket, new ListRewriter(mount));
    for (const l of listeners) l.call(server, front);
  });
}

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
/**
 * What needs the full reading of a head (endOfHead): a header that frames a
 * body or changes the protocol, and a line that starts with whitespace (a
 * folded line, which the full reading refuses).
 */
const FRAMING = /\n(?:[ \t]|(?:content-length|transfer-encoding|upgrade|expect|connection)[ \t]*:)/i;

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
  get passing(): boolean {
    return this.state === 'pass';
  }

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
          this.held.push(took);
          this.heldLen += took.length;
          i = j;
          if (this.heldLen === this.match.length) {
            const rewritten = Buffer.concat([Buffer.from('GET '), this.match.subarray(5)]);
            this.held = [];
            this.heldLen = 0;
            out.push(rewritten);
            this.headBytes(rewritten);
            this.querySeen = false;
            this.state = 'target';
          } else if (i < chunk.length) {
            // Not a LIST under the mount: the bytes go on unchanged.
            const held = Buffer.concat(this.held);
            this.held = [];
            this.heldLen = 0;
            out.push(held);
            this.state = 'head';
            if (!this.headBytes(held)) {
              this.toPass();
              break;
            }
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
            if (chunk[i] !== 32) {
              this.toPass();
              break;
            }
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
          if (!this.headBytes(part)) {
            this.toPass();
            break;
          }
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
          if (this.line.length > (this.state === 'trailers' ? MAX_HEAD : MAX_CHUNK_LINE)) {
            this.toPass();
            break;
          }
          if (j !== -1) {
            const line = this.line;
            this.line = Buffer.alloc(0);
            if (line.length < 2 || line[line.length - 2] !== 13) {
              this.toPass();
              break;
            }
            if (this.state === 'trailers') {
              if (line.length === 2) this.state = 'start';
              else if (line.includes(13) && line.indexOf(13) !== line.length - 2) this.toPass();
            } else {
              const m = /^([0-9A-Fa-f]{1,13})(;[^\r\n]*)?\r\n$/.exec(line.toString('latin1'));
              if (!m) {
                this.toPass();
                break;
              }
              const size = parseInt(m[1], 16);
              if (size === 0) this.state = 'trailers';
              else {
                this.remaining = size;
                this.state = 'chunk-data';
              }
            }
          }
          break;
        }
        case 'chunk-data': {
          const n = Math.min(this.remaining, chunk.length - i);
          out.push(chunk.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = 'chunk-crlf';
            this.remaining = 2;
          }
          break;
        }
        case 'chunk-crlf': {
          const b = chunk[i];
          out.push(chunk.subarray(i, i + 1));
          i++;
          if (b !== CRLF[2 - this.remaining]) {
            this.toPass();
            break;
          }
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
    this.held = [];
    this.heldLen = 0;
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
    this.head = [];
    this.headLen = 0;
    this.tail = Buffer.alloc(0);
    this.line = Buffer.alloc(0);
  }

  /** The head is complete: how its body is framed decides what comes next. */
  private endOfHead(whole: Buffer): void {
    this.head = [];
    this.headLen = 0;
    this.tail = Buffer.alloc(0);
    const text = whole.toString('latin1');
    const lines = text.slice(0, -4).split('\r\n');
    const requestLine = lines[0];
    // A bare LF anywhere, or a request line the parser would read otherwise: not ours to follow.
    if (text.slice(0, -4).replace(/\r\n/g, '').includes('\n') || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ \S+ HTTP\/1\.[01]$/.test(requestLine))
      return this.toPass();
    const method = requestLine.slice(0, requestLine.indexOf(' '));
    // Most heads (a GET) name none of the headers that frame a body or
    // change the protocol: then the next message starts right after this one.
    if (method !== 'CONNECT' && !FRAMING.test(text)) {
      this.state = 'start';
      return;
    }
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
        te = true;
        chunked = true;
      } else if (name === 'upgrade' || (name === 'expect' && value.toLowerCase() !== '100-continue')) {
        return this.toPass();
      } else if (name === 'connection' && /(^|,)\s*upgrade\s*(,|$)/i.test(value)) {
        return this.toPass();
      }
    }
    if (method === 'CONNECT' || (chunked && contentLength !== null)) return this.toPass();
    if (chunked) {
      this.state = 'chunk-size';
      this.line = Buffer.alloc(0);
      return;
    }
    if (contentLength) {
      this.remaining = contentLength;
      this.state = 'body';
      return;
    }
    this.state = 'start';
  }
}

const FRONTED = Symbol('hush.listFront');

/** What Node's HTTP server checks before it reads a socket natively (see acceptListMethod). */
interface ConsumableHandle {
  _consumed?: boolean;
}

/**
 * Puts the LIST front before the HTTP parser of `server` (an http or https
 * server from Fastify, before it listens).
 *
 * The server is given the real socket, so its responses are written to it
 * directly. Only its input is rewritten: bytes read from the socket pass
 * through a ListRewriter on their way to the parser (the socket's `push`,
 * which every read goes through). Node's HTTP server would otherwise feed
 * the socket's handle to its parser natively, bypassing `push`; marking the
 * handle consumed (the flag Node checks for exactly that) keeps the reads in
 * JavaScript. test/vault-compat/list-method.test.ts sends LIST over a real
 * connection: if a Node release stopped honouring the flag, LIST would get
 * the parser's 400 again and those tests fail.
 *
 * An earlier version put a Duplex between the socket and the server; every
 * response then went through two writable streams, which cost about a tenth
 * of a bulk read's CPU (docs/performance.md).
 */
export function acceptListMethod(server: Server, mount: string): void {
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  const listeners = server.listeners(event) as ((s: unknown) => void)[];
  server.removeAllListeners(event);
  server.on(event, (socket: (Socket | TLSSocket) & { [FRONTED]?: true; _handle?: ConsumableHandle | null }) => {
    if (!socket[FRONTED]) {
      socket[FRONTED] = true;
      const rewriter = new ListRewriter(mount);
      const push = socket.push.bind(socket) as (chunk: unknown, encoding?: BufferEncoding) => boolean;
      socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (chunk === null) {
          const rest = rewriter.flush();
          if (rest.length) push(rest);
          return push(null);
        }
        if (!Buffer.isBuffer(chunk)) return push(chunk, encoding);
        const out = rewriter.feed(chunk);
        return out.length ? push(out) : true;
      };
      if (socket._handle) socket._handle._consumed = true;
    }
    for (const l of listeners) l.call(server, socket);
  });
}

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { cidrList, ipAllowed, normaliseIp } from '../services/token/cidr.js';

/** How often Node checks every connection against the header and request timeouts. */
const CHECK_INTERVAL_MS = 1_000;
/** The headers of a request must arrive within this (or the request timeout, when shorter). */
const HEADERS_TIMEOUT_MS = 20_000;

/** proxy-addr's names for address ranges, as --trust-proxy accepts them. */
const NAMED_RANGES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

export interface ConnectionLimits {
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
  trustProxy: string[];
  /** Counts a refused connection (metrics), when metrics are on. */
  refused?: (reason: 'max_connections' | 'per_address') => void;
}

/** True at most once a minute per key: one log line per minute, so a flood does not become a flood of log lines. */
function oncePerMinute(): (key: string) => boolean {
  const warned = new Map<string, number>();
  return (key) => {
    const now = Date.now();
    if ((warned.get(key) ?? 0) >= now - 60_000) return false;
    warned.set(key, now);
    if (warned.size > 10_000) warned.clear();
    return true;
  };
}

/**
 * Caps the connections open at once in total (--max-connections) with
 * Node's own server.maxConnections: a connection over it is closed as soon
 * as it is accepted, before a byte is read or answered (Node's 'drop').
 */
export function limitTotalConnections(server: Server, l: ConnectionLimits, log: Pick<Logger, 'warn'>): void {
  server.maxConnections = l.maxConnections;
  const warn = oncePerMinute();
  server.on('drop', (data?: { remoteAddress?: string }) => {
    l.refused?.('max_connections');
    if (warn('total'))
      log.warn(
        { remoteAddress: data?.remoteAddress, limit: l.maxConnections },
        'connection refused: the server already holds the most open connections allowed (--max-connections)',
      );
  });
}

/** Options for http(s).createServer: how long a client may take to send its headers, and how often that is checked. */
export function serverTimeoutOptions(l: ConnectionLimits): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    headersTimeout: Math.min(HEADERS_TIMEOUT_MS, l.requestTimeoutMs),
    requestTimeout: l.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, l.requestTimeoutMs),
  };
}

/**
 * Caps the connections open at once from one client address: a connection
 * over the cap is closed as soon as it is accepted, before a byte of it is
 * read. Addresses inside --trust-proxy are not counted (a proxy carries
 * many clients; its own limits apply there). One warning line per address
 * and minute, so a flood does not become a flood of log lines.
 */
export function limitConnectionsPerAddress(server: Server, l: ConnectionLimits, log: Pick<Logger, 'warn'>): void {
  const open = new Map<string, number>();
  const proxies = cidrList(l.trustProxy.flatMap((c) => NAMED_RANGES[c] ?? [c]));
  const warn = oncePerMinute();
  server.on('connection', (socket: Socket) => {
    const addr = normaliseIp(socket.remoteAddress ?? '');
    if (!addr || (proxies && ipAllowed(proxies, addr))) return;
    const n = (open.get(addr) ?? 0) + 1;
    if (n > l.maxConnectionsPerAddress) {
      l.refused?.('per_address');
      if (warn(addr)) {
        log.warn(
          { remoteAddress: addr, limit: l.maxConnectionsPerAddress },
          'connection refused: this address already holds the most open connections allowed (--max-connections-per-address)',
        );
      }
      socket.destroy();
      return;
    }
    open.set(addr, n);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}

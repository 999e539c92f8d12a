import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Sends one webhook request, with the SSRF guard (docs/webhooks.md#ssrf):
 *
 * - loopback, private, link-local, unique-local, CGNAT, multicast and other
 *   non-public addresses are refused unless --allow-private-webhooks; the
 *   check runs on the addresses the connection actually uses (a lookup hook
 *   on the socket), so a name that resolves to a public address at creation
 *   and a private one at delivery (DNS rebinding) is still refused;
 * - redirects are not followed (a 3xx is a failed attempt);
 * - the whole attempt is bounded by the timeout (5 s);
 * - the response body is never read or stored: only the status.
 */
export interface SendResult {
  status: number | null;
  error: string | null;
}

/** Why an address is refused, or null when it is a public unicast address. */
export function refusedAddress(ip: string): string | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(ip);
  } catch {
    return 'not an IP address';
  }
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const range = addr.range();
  return range === 'unicast' ? null : `${range} address`;
}

/** A URL's host as a bare IP when it is one (IPv6 without brackets), else null. */
export function literalIp(hostname: string): string | null {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return isIP(h) ? h : null;
}

class Refused extends Error {}

function guardedLookup(allowPrivate: boolean): LookupFunction {
  return ((
    hostname: string,
    options: { all?: boolean; family?: number },
    callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    dnsLookup(hostname, { all: true, family: options?.family ?? 0 }, (err, addresses) => {
      if (err) return callback(err, '');
      if (!allowPrivate) {
        // Any private answer refuses the name: a mixed answer is how rebinding hides.
        for (const a of addresses) {
          const why = refusedAddress(a.address);
          if (why) return callback(new Refused(`${hostname} resolves to a ${why}; private targets need --allow-private-webhooks`), '');
        }
      }
      if (options?.all) return callback(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  }) as unknown as LookupFunction;
}

export async function sendWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: { allowPrivate: boolean; timeoutMs: number },
): Promise<SendResult> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { status: null, error: 'the webhook URL is not valid' };
  }
  const ip = literalIp(u.hostname);
  if (ip && !opts.allowPrivate) {
    const why = refusedAddress(ip);
    if (why) return { status: null, error: `the target is a ${why}; private targets need --allow-private-webhooks` };
  }
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const done = (r: SendResult) => {
      if (!settled) {
        settled = true;
        clearTimeout(timer);
        resolve(r);
      }
    };
    const req = mod.request(
      u,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        lookup: guardedLookup(opts.allowPrivate),
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        // The body is not read: the status is the answer.
        res.destroy();
        req.destroy();
        if (status >= 200 && status < 300) done({ status, error: null });
        else if (status >= 300 && status < 400) done({ status, error: 'redirects are not followed' });
        else done({ status, error: `the receiver answered ${status}` });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(new Error(`no answer within ${opts.timeoutMs / 1000} s`));
    }, opts.timeoutMs);
    req.on('error', (e) => {
      const err = e as NodeJS.ErrnoException;
      done({
        status: null,
        error:
          e instanceof Refused || /no answer within/.test(e.message) ? e.message : `${err.code ?? 'error'}: ${e.message}`.slice(0, 300),
      });
    });
    req.end(body);
  });
}

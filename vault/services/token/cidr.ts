import { BlockList, isIP } from 'node:net';
import { InvalidRequestError } from '../../errors.js';
import { redactTokens } from './redact.js';

export interface Cidr {
  addr: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Strips the IPv4-mapped IPv6 prefix so 10.1.2.3 matches 10.0.0.0/8 on dual-stack sockets. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

export function parseCidr(text: string): Cidr {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(typeof text === 'string' ? text.trim() : '');
  const fam = m ? isIP(m[1]) : 0;
  const shown = redactTokens(String(text)).slice(0, 60);
  if (!m || fam === 0) throw new InvalidRequestError(`invalid CIDR "${shown}": expected an address or ADDRESS/PREFIX such as 10.0.0.0/8`);
  // Node's isIP accepts an IPv6 zone (fe80::1%lo), but a client address never carries one: such an entry would match nothing.
  if (m[1].includes('%'))
    throw new InvalidRequestError(
      `invalid CIDR "${shown}": an IPv6 zone ("%" and an interface name) is not allowed; give the address without it`,
    );
  const max = fam === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) throw new InvalidRequestError(`invalid CIDR "${shown}": prefix must be 0-${max}`);
  return { addr: m[1], prefix, family: fam === 4 ? 'ipv4' : 'ipv6' };
}

export function cidrList(cidrs: string[]): BlockList | null {
  if (cidrs.length === 0) return null;
  const bl = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    bl.addSubnet(p.addr, p.prefix, p.family);
  }
  return bl;
}

export function ipAllowed(list: BlockList | null, ip: string | null): boolean {
  if (!list) return true;
  if (!ip) return false;
  const n = normaliseIp(ip);
  const fam = isIP(n);
  if (fam === 0) return false;
  return list.check(n, fam === 4 ? 'ipv4' : 'ipv6');
}

/** Is every address in `inner` inside one of `outer`? */
export function cidrWithin(outer: string[], inner: string): boolean {
  const p = parseCidr(inner);
  return outer.some((o) => {
    const q = parseCidr(o);
    if (q.family !== p.family || q.prefix > p.prefix) return false;
    const bl = new BlockList();
    bl.addSubnet(q.addr, q.prefix, q.family);
    return bl.check(p.addr, p.family);
  });
}

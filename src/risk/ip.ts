import { BlockList, isIP } from 'node:net';

/**
 * Address helpers for rate limits and risk counters. An IPv6 client usually has a whole /64
 * (RFC 6177), so counting its addresses one by one would let it rotate through 2^64 of them.
 */

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:192.0.2.1`) so one client has one spelling. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? (mapped[1] as string) : ip.toLowerCase();
}

/** Expands an IPv6 address to its eight 16-bit groups, or undefined when it is not IPv6. */
function ipv6Groups(ip: string): number[] | undefined {
  if (isIP(ip) !== 6) return undefined;
  const [head = '', tail] = ip.split('%')[0]!.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':'));
  let headParts = parse(head);
  let tailParts = tail === undefined ? [] : parse(tail);

  // An embedded IPv4 tail (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) is two groups.
  const expandIpv4 = (parts: string[]) => {
    const last = parts[parts.length - 1];
    if (!last?.includes('.')) return parts;
    const octets = last.split('.').map(Number);
    return [...parts.slice(0, -1), ((octets[0]! << 8) | octets[1]!).toString(16), ((octets[2]! << 8) | octets[3]!).toString(16)];
  };
  if (tail === undefined) headParts = expandIpv4(headParts);
  else tailParts = expandIpv4(tailParts);

  const missing = 8 - headParts.length - tailParts.length;
  const groups = [...headParts, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...tailParts];
  return groups.map((group) => parseInt(group, 16));
}

/** Returns the /64 prefix of an IPv6 address (`2001:db8:1:2::/64`), or undefined for IPv4. */
export function ipv6Prefix64(ip: string): string | undefined {
  const groups = ipv6Groups(normalizeIp(ip));
  if (!groups) return undefined;
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}

/**
 * Returns the key one client is counted under: the IPv4 address, or the /64 of an IPv6 address, so
 * rotating addresses inside one allocation does not reset a limit.
 */
export function clientSubject(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const normalized = normalizeIp(ip);
  return ipv6Prefix64(normalized) ?? normalized;
}

/**
 * Matches the configured trusted proxies (addresses or CIDR ranges, IPv4 or IPv6), the same list
 * Fastify's `trustProxy` believes `X-Forwarded-For` from.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(entries: string[]) {
    this.empty = entries.length === 0;
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (isIP(address) === 0) throw new Error(`TOLLGATE_TRUSTED_PROXIES: "${entry}" is not an IP address or CIDR range`);
      if (bits === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(bits), family);
    }
  }

  /** Returns whether the socket peer is a trusted proxy. */
  includes(peer: string | undefined): boolean {
    if (!peer || this.empty) return false;
    const address = normalizeIp(peer);
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

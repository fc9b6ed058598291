import { BlockList, isIP } from 'node:net';

export interface BlockedRange {
  net: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
  /** What lives there, and why a source must not reach it. */
  what: string;
}

/**
 * Addresses a source URL must never reach unless its host was explicitly allowed: loopback,
 * private, link-local (cloud metadata at 169.254.169.254), unique-local, multicast, reserved,
 * documentation, and every translation or tunnel range that embeds an IPv4 address (a
 * gateway would carry the request to the private address inside). IPv4-mapped IPv6
 * (`::ffff:a.b.c.d`, dotted or hex) is judged as IPv4.
 */
export const BLOCKED_RANGES: readonly BlockedRange[] = [
  { net: '0.0.0.0', prefix: 8, family: 'ipv4', what: '"this network"' },
  { net: '10.0.0.0', prefix: 8, family: 'ipv4', what: 'private' },
  { net: '100.64.0.0', prefix: 10, family: 'ipv4', what: 'carrier-grade NAT' },
  { net: '127.0.0.0', prefix: 8, family: 'ipv4', what: 'loopback' },
  { net: '169.254.0.0', prefix: 16, family: 'ipv4', what: 'link-local, cloud metadata' },
  { net: '172.16.0.0', prefix: 12, family: 'ipv4', what: 'private' },
  { net: '192.0.0.0', prefix: 24, family: 'ipv4', what: 'IETF protocol assignments' },
  { net: '192.0.2.0', prefix: 24, family: 'ipv4', what: 'documentation' },
  { net: '192.88.99.0', prefix: 24, family: 'ipv4', what: '6to4 relay anycast' },
  { net: '192.168.0.0', prefix: 16, family: 'ipv4', what: 'private' },
  { net: '198.18.0.0', prefix: 15, family: 'ipv4', what: 'benchmarking' },
  { net: '198.51.100.0', prefix: 24, family: 'ipv4', what: 'documentation' },
  { net: '203.0.113.0', prefix: 24, family: 'ipv4', what: 'documentation' },
  { net: '224.0.0.0', prefix: 4, family: 'ipv4', what: 'multicast' },
  { net: '240.0.0.0', prefix: 4, family: 'ipv4', what: 'reserved, broadcast' },
  {
    net: '::',
    prefix: 96,
    family: 'ipv6',
    what: 'unspecified, loopback, deprecated IPv4-compatible ::a.b.c.d',
  },
  { net: '::ffff:0:0:0', prefix: 96, family: 'ipv6', what: 'SIIT IPv4-translated' },
  { net: '64:ff9b::', prefix: 96, family: 'ipv6', what: 'NAT64 well-known prefix' },
  { net: '64:ff9b:1::', prefix: 48, family: 'ipv6', what: 'NAT64 local-use prefix' },
  { net: '100::', prefix: 64, family: 'ipv6', what: 'discard-only' },
  { net: '2001::', prefix: 32, family: 'ipv6', what: 'Teredo' },
  { net: '2001:db8::', prefix: 32, family: 'ipv6', what: 'documentation' },
  { net: '2002::', prefix: 16, family: 'ipv6', what: '6to4' },
  { net: '3fff::', prefix: 20, family: 'ipv6', what: 'documentation (RFC 9637)' },
  { net: 'fc00::', prefix: 7, family: 'ipv6', what: 'unique local' },
  { net: 'fe80::', prefix: 10, family: 'ipv6', what: 'link-local' },
  { net: 'fec0::', prefix: 10, family: 'ipv6', what: 'site-local (deprecated)' },
  { net: 'ff00::', prefix: 8, family: 'ipv6', what: 'multicast' },
];

const blocked = new BlockList();
for (const { net, prefix, family } of BLOCKED_RANGES) blocked.addSubnet(net, prefix, family);

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped?.[1]) return blocked.check(mapped[1], 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return blocked.check(address, 'ipv4');
}

import { describe, expect, it } from 'vitest';
import { BLOCKED_RANGES, isForbiddenAddress } from '../../src/adapters/http/address-policy.js';

/**
 * Each blocked range: addresses inside it (its first and last where they differ) that must be
 * refused, and the nearest addresses outside it that no other range covers, which must be
 * allowed (a range too wide or too narrow fails one side). None outside where every neighbour
 * is blocked too (240.0.0.0/4 sits between multicast and the end of IPv4, fec0::/10 between
 * link-local and multicast).
 */
const RANGES: Record<string, { inside: string[]; outside: string[] }> = {
  '0.0.0.0/8': { inside: ['0.0.0.0', '0.255.255.255'], outside: ['1.0.0.1'] },
  '10.0.0.0/8': { inside: ['10.0.0.1', '10.255.255.254'], outside: ['9.255.255.255', '11.0.0.1'] },
  '100.64.0.0/10': {
    inside: ['100.64.0.1', '100.127.255.254'],
    outside: ['100.63.255.255', '100.128.0.1'],
  },
  '127.0.0.0/8': {
    inside: ['127.0.0.1', '127.255.255.254'],
    outside: ['126.255.255.255', '128.0.0.1'],
  },
  '169.254.0.0/16': {
    inside: ['169.254.169.254', '169.254.0.1'],
    outside: ['169.253.255.255', '169.255.0.1'],
  },
  '172.16.0.0/12': {
    inside: ['172.16.0.1', '172.31.255.255'],
    outside: ['172.15.255.255', '172.32.0.1'],
  },
  '192.0.0.0/24': {
    inside: ['192.0.0.1', '192.0.0.255'],
    outside: ['191.255.255.255', '192.0.1.1'],
  },
  '192.0.2.0/24': { inside: ['192.0.2.1', '192.0.2.255'], outside: ['192.0.1.255', '192.0.3.1'] },
  '192.88.99.0/24': {
    inside: ['192.88.99.1', '192.88.99.255'],
    outside: ['192.88.98.255', '192.88.100.1'],
  },
  '192.168.0.0/16': {
    inside: ['192.168.1.20', '192.168.255.254'],
    outside: ['192.167.255.255', '192.169.0.1'],
  },
  '198.18.0.0/15': {
    inside: ['198.18.0.1', '198.19.255.254'],
    outside: ['198.17.255.255', '198.20.0.1'],
  },
  '198.51.100.0/24': {
    inside: ['198.51.100.1', '198.51.100.255'],
    outside: ['198.51.99.255', '198.51.101.1'],
  },
  '203.0.113.0/24': {
    inside: ['203.0.113.1', '203.0.113.255'],
    outside: ['203.0.112.255', '203.0.114.1'],
  },
  '224.0.0.0/4': { inside: ['224.0.0.1', '239.255.255.255'], outside: ['223.255.255.255'] },
  '240.0.0.0/4': { inside: ['240.0.0.1', '255.255.255.255', '::ffff:240.0.0.1'], outside: [] },
  '::/96': { inside: ['::', '::1', '::7f00:1', '::a9fe:a9fe'], outside: ['::1:0:0'] },
  '::ffff:0:0:0/96': {
    inside: ['::ffff:0:7f00:1', '::ffff:0:8.8.8.8', '::ffff:0:ffff:ffff'],
    // And its look-alike ::ffff:0:0/96 is IPv4-mapped, judged as the IPv4 address.
    outside: ['::fffe:ffff:ffff:ffff', '::ffff:1:0:0', '::ffff:8.8.8.8', '::ffff:808:808'],
  },
  '64:ff9b::/96': {
    inside: ['64:ff9b::a9fe:a9fe', '64:ff9b::8.8.8.8', '64:ff9b::ffff:ffff'],
    outside: ['64:ff9b::1:0:0', '64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff'],
  },
  '64:ff9b:1::/48': {
    inside: ['64:ff9b:1::a00:1', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff'],
    outside: ['64:ff9b:0:ffff:ffff:ffff:ffff:ffff', '64:ff9b:2::'],
  },
  '100::/64': { inside: ['100::1', '100::ffff:ffff:ffff:ffff'], outside: ['100:0:0:1::'] },
  '2001::/32': {
    inside: ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001::ffff:ffff'],
    outside: ['2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:1::'],
  },
  '2001:db8::/32': {
    inside: ['2001:db8::1', '2001:db8:ffff:ffff::1'],
    outside: ['2001:db7:ffff::1', '2001:db9::'],
  },
  '2002::/16': {
    inside: ['2002:7f00:1::1', '2002:a9fe:a9fe::1', '2002:ffff:ffff::1'],
    outside: ['2001:ffff:ffff::1', '2003::'],
  },
  '3fff::/20': {
    inside: ['3fff::1', '3fff:fff:ffff::1'],
    outside: ['3ffe:ffff::1', '3fff:1000::'],
  },
  'fc00::/7': {
    inside: ['fc00::1', 'fd12:3456:789a::1', 'fdff:ffff::1'],
    outside: ['fbff:ffff::1', 'fe00::'],
  },
  'fe80::/10': { inside: ['fe80::1', 'febf:ffff::1'], outside: ['fe7f:ffff::1'] },
  'fec0::/10': { inside: ['fec0::1', 'feff:ffff:ffff::1'], outside: [] },
  'ff00::/8': { inside: ['ff02::1', 'ffff:ffff::1'], outside: [] },
};

describe('every blocked range, with a test', () => {
  it('has a row here for each range the guard blocks, and blocks each range listed here', () => {
    const blocked = BLOCKED_RANGES.map((r) => `${r.net}/${r.prefix}`);
    expect(Object.keys(RANGES).sort()).toEqual([...blocked].sort());
  });

  describe.each(Object.entries(RANGES))('%s', (_range, { inside, outside }) => {
    it.each(inside)('refuses %s, inside it', (address) => {
      expect(isForbiddenAddress(address)).toBe(true);
    });
    if (outside.length > 0) {
      it.each(outside)('allows %s, just outside it', (address) => {
        expect(isForbiddenAddress(address)).toBe(false);
      });
    }
  });
});

describe('isForbiddenAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback range'],
    ['10.0.0.1', 'private 10/8'],
    ['10.255.255.254', 'private 10/8'],
    ['172.16.0.1', 'private 172.16/12'],
    ['172.31.255.255', 'private 172.16/12'],
    ['192.168.1.20', 'private 192.168/16'],
    ['169.254.169.254', 'cloud metadata (link-local)'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'this host'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::1', 'IPv6 loopback'],
    ['::', 'IPv6 unspecified'],
    ['fc00::1', 'unique local'],
    ['fd12:3456:789a::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['ff02::1', 'IPv6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.1.2.3', 'IPv4-mapped private'],
    ['::FFFF:169.254.169.254', 'IPv4-mapped metadata, upper case'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex form'],
  ])('%s (%s) is forbidden', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    ['8.8.8.8'],
    ['1.1.1.1'],
    ['172.32.0.1'],
    ['172.15.255.255'],
    ['192.169.0.1'],
    ['2606:4700::1111'],
    ['2001:4860:4860::8888'],
    ['::ffff:8.8.8.8'],
  ])('%s is allowed', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it.each(['', 'localhost', 'example.com', '999.1.1.1', '1.2.3'])(
    'refuses %j, which is not an IP address',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(true);
    },
  );
});

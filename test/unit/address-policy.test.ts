import { describe, expect, it } from 'vitest';
import { isForbiddenAddress } from '../../src/adapters/http/address-policy.js';

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

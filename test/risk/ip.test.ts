import { describe, expect, it } from 'vitest';

import { clientSubject, ipv6Prefix64, normalizeIp, TrustedProxies } from '../../src/risk/ip.ts';

describe('ipv6Prefix64', () => {
  it.each([
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::7', '2001:db8:1:2::/64'],
    ['2001:DB8:0:0:ffff::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('reduces %s to %s', (ip, prefix) => {
    expect(ipv6Prefix64(ip)).toBe(prefix);
  });

  it('returns undefined for IPv4', () => {
    expect(ipv6Prefix64('192.0.2.1')).toBeUndefined();
  });
});

describe('clientSubject', () => {
  it('keeps an IPv4 address whole', () => {
    expect(clientSubject('192.0.2.1')).toBe('192.0.2.1');
  });

  it('unwraps an IPv4-mapped address', () => {
    expect(normalizeIp('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientSubject('::ffff:192.0.2.1')).toBe('192.0.2.1');
  });

  it('groups two addresses of one /64', () => {
    expect(clientSubject('2001:db8:1:2::1')).toBe(clientSubject('2001:db8:1:2:ffff:ffff:ffff:ffff'));
  });

  it('separates neighbouring /64s', () => {
    expect(clientSubject('2001:db8:1:2::1')).not.toBe(clientSubject('2001:db8:1:3::1'));
  });
});

describe('TrustedProxies', () => {
  const proxies = new TrustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['2001:db8:5::1', true],
    ['2001:db9::1', false],
    ['not an address', false],
  ])('matches %s: %s', (peer, expected) => {
    expect(proxies.includes(peer)).toBe(expected);
  });

  it('trusts nobody when empty', () => {
    expect(new TrustedProxies([]).includes('127.0.0.1')).toBe(false);
  });

  it('rejects a malformed entry', () => {
    expect(() => new TrustedProxies(['10.0.0/8x'])).toThrow(/TOLLGATE_TRUSTED_PROXIES/);
  });
});

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { Principal } from '../../src/authz/principal.ts';
import { epochSeconds, type ManualClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { computeTrust, trustRecordKey, type TrustFacts } from '../../src/devices/trust.ts';
import { errorCode, signUp } from '../helpers/flows.ts';
import { createDeviceKey, dpopGraphql, pairOf, refreshWithProof, signProof, signUpWithKey, type DeviceKey, type KeyBoundUser } from '../helpers/dpop.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

const day = 24 * 3600;

describe('computeTrust', () => {
  const now = 1_800_000_000;
  const attested: TrustFacts = { jkt: 'thumbprint', suspended: false, attestedAt: now - 60, attestationExpiresAt: now + 3600, flagged: false, trustedAt: null };
  const cases: Array<[string, TrustFacts, string]> = [
    ['no key', { ...attested, jkt: null }, 'UNKNOWN'],
    ['key, no attestation', { ...attested, attestedAt: null, attestationExpiresAt: null }, 'BASIC'],
    ['attested', attested, 'ATTESTED'],
    ['attestation expired', { ...attested, attestationExpiresAt: now }, 'BASIC'],
    ['attested with a lowering signal', { ...attested, flagged: true }, 'BASIC'],
    ['confirmed inside the period', { ...attested, trustedAt: now - 100 }, 'ATTESTED'],
    ['confirmed for the period', { ...attested, trustedAt: now - 3600 }, 'TRUSTED'],
    ['confirmed but attestation expired', { ...attested, trustedAt: now - 3600, attestationExpiresAt: now - 1 }, 'BASIC'],
    ['suspended', { ...attested, trustedAt: now - 3600, suspended: true }, 'UNKNOWN'],
  ];

  for (const [name, facts, expected] of cases) {
    it(`is ${expected} when ${name}`, () => {
      expect(computeTrust(facts, now, 3600)).toBe(expected);
    });
  }
});

describe('session lifetimes by trust in configuration', () => {
  it('derives level lifetimes from general ones', () => {
    const config = loadConfig({});

    expect(config.devices.lifetimes.UNKNOWN).toEqual({ idleSeconds: 7 * day, absoluteSeconds: 30 * day });
    expect(config.devices.lifetimes.BASIC).toEqual({ idleSeconds: 30 * day, absoluteSeconds: 90 * day });
    expect(config.devices.lifetimes.TRUSTED).toEqual({ idleSeconds: 60 * day, absoluteSeconds: 180 * day });
  });

  it('takes a level of its own variables', () => {
    const config = loadConfig({ TOLLGATE_SESSION_IDLE_SECONDS_ATTESTED: '600', TOLLGATE_SESSION_ABSOLUTE_SECONDS_ATTESTED: '1200' });

    expect(config.devices.lifetimes.ATTESTED).toEqual({ idleSeconds: 600, absoluteSeconds: 1200 });
  });

  it('rejects absolute shorter than idle', () => {
    expect(() => loadConfig({ TOLLGATE_SESSION_IDLE_SECONDS_TRUSTED: '7200', TOLLGATE_SESSION_ABSOLUTE_SECONDS_TRUSTED: '3600' })).toThrow(/TOLLGATE_SESSION_ABSOLUTE_SECONDS_TRUSTED/);
  });

  it('requires a public URL for a URN issuer', () => {
    expect(() => loadConfig({ TOLLGATE_ISSUER: 'urn:tollgate' })).toThrow(/TOLLGATE_PUBLIC_URL/);
  });
});

describe('live device trust', () => {
  let gateway: TestGateway;
  let clock: ManualClock;

  beforeAll(async () => {
    gateway = await startTestGateway({
      env: {
        TOLLGATE_DEVICE_TRUSTED_AFTER_SECONDS: '3600',
        TOLLGATE_SESSION_IDLE_SECONDS_UNKNOWN: '600',
        TOLLGATE_SESSION_ABSOLUTE_SECONDS_UNKNOWN: '1200',
        TOLLGATE_SESSION_IDLE_SECONDS_BASIC: '3600',
        TOLLGATE_SESSION_ABSOLUTE_SECONDS_BASIC: '7200',
        TOLLGATE_SESSION_IDLE_SECONDS_ATTESTED: '7200',
        TOLLGATE_SESSION_ABSOLUTE_SECONDS_ATTESTED: '14400',
        TOLLGATE_SESSION_IDLE_SECONDS_TRUSTED: '86400',
        TOLLGATE_SESSION_ABSOLUTE_SECONDS_TRUSTED: '172800',
      },
    });
    clock = gateway.clock as ManualClock;
  });

  afterAll(async () => {
    await gateway?.close();
  });

  /** Authenticates a request exactly as the HTTP server does, and returns its principal. */
  async function principalOf(key: DeviceKey, accessToken: string): Promise<Principal> {
    const proof = await signProof(gateway, key, { accessToken });
    const principal = await gateway.tollgate.services.authenticator.authenticate({ authorization: `DPoP ${accessToken}`, http: { method: 'POST', url: '/graphql', dpop: proof } });
    if (!principal) throw new Error('no principal');
    return principal;
  }

  async function attest(deviceId: string, signals: string[] = [], validSeconds = 3 * day) {
    return gateway.tollgate.services.deviceTrust.recordAttestation(deviceId, {
      passed: true,
      kind: 'PLAY_INTEGRITY',
      signals,
      expiresAt: new Date(clock.now().getTime() + validSeconds * 1000),
    });
  }

  async function lifetimeOf(sessionId: string): Promise<{ idle: number; absolute: number }> {
    const rows = await sql<{ idle: number; absolute: number }>(
      gateway,
      'SELECT extract(epoch FROM idle_expires_at - last_used_at)::int AS idle, extract(epoch FROM absolute_expires_at - created_at)::int AS absolute FROM sessions WHERE id = $1',
      [sessionId],
    );
    return rows[0] as { idle: number; absolute: number };
  }

  async function keyBound(): Promise<{ key: DeviceKey; user: KeyBoundUser }> {
    const key = await createDeviceKey();
    return { key, user: await signUpWithKey(gateway, key) };
  }

  it('gives a bound request BASIC trust', async () => {
    const { key, user } = await keyBound();
    const principal = await principalOf(key, user.accessToken);

    expect(principal.deviceTrust).toBe('BASIC');
    expect(principal.dpopVerified).toBe(true);
  });

  it('raises trust after an attestation', async () => {
    const { key, user } = await keyBound();
    const trust = await attest(user.deviceId);
    const principal = await principalOf(key, user.accessToken);

    expect(trust).toBe('ATTESTED');
    expect(principal.deviceTrust).toBe('ATTESTED');
    expect(principal.attestedAt).toBe(epochSeconds(clock.now()));
  });

  it('drops to BASIC once the attestation expires, without any write', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId, [], 60);
    clock.advance(61);

    expect((await principalOf(key, user.accessToken)).deviceTrust).toBe('BASIC');
  });

  it('keeps a flagged attestation at BASIC', async () => {
    const { key, user } = await keyBound();

    expect(await attest(user.deviceId, ['rooted'])).toBe('BASIC');
    expect((await principalOf(key, user.accessToken)).deviceTrust).toBe('BASIC');
  });

  it('lowers trust on a reported signal', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId);
    await gateway.tollgate.services.deviceTrust.recordIntegritySignals(user.deviceId, ['debugger']);

    expect((await principalOf(key, user.accessToken)).deviceTrust).toBe('BASIC');
  });

  it('lowers trust on suspension', async () => {
    const { key, user } = await keyBound();
    await gateway.tollgate.services.deviceTrust.suspend(user.deviceId, 'operator_review', { actor: 'operator:test' });
    const response = await dpopGraphql(gateway, key, user.accessToken, '{ catalog(first: 1) { stock } }');

    expect(errorCode(response)).toBe('DEVICE_TRUST_REQUIRED');
    expect(response.body.errors?.[0]?.extensions?.currentTrust).toBe('UNKNOWN');
  });

  it('becomes TRUSTED after the clean period', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId);
    await gateway.tollgate.services.deviceTrust.confirm(user.deviceId);
    const during = await principalOf(key, user.accessToken);
    // A rotation applies the ATTESTED idle lifetime, which outlasts the period.
    const rotated = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(3600);
    const fresh = pairOf(await refreshWithProof(gateway, key, rotated.refreshToken));
    const after = await principalOf(key, fresh.accessToken);

    expect(during.deviceTrust).toBe('ATTESTED');
    expect(after.deviceTrust).toBe('TRUSTED');
  });

  it('voids the confirmation on a signal', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId);
    await gateway.tollgate.services.deviceTrust.confirm(user.deviceId);
    await attest(user.deviceId, ['emulator']);
    await attest(user.deviceId);
    const rotated = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    clock.advance(3600);
    const fresh = pairOf(await refreshWithProof(gateway, key, rotated.refreshToken));

    expect((await principalOf(key, fresh.accessToken)).deviceTrust).toBe('ATTESTED');
  });

  it('repairs a trust record Redis lost', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId);
    await gateway.tollgate.services.state.del(trustRecordKey(user.deviceId));
    const during = await principalOf(key, user.accessToken);
    await vi.waitFor(async () => expect(await gateway.tollgate.services.state.get(trustRecordKey(user.deviceId))).not.toBeNull());
    const after = await principalOf(key, user.accessToken);

    expect(during.deviceTrust).toBe('BASIC');
    expect(after.deviceTrust).toBe('ATTESTED');
  });

  it('gives key-less sessions UNKNOWN lifetimes', async () => {
    const user = await signUp(gateway);

    expect(await lifetimeOf(user.sessionId)).toEqual({ idle: 600, absolute: 1200 });
  });

  it('gives bound sessions BASIC lifetimes', async () => {
    const { user } = await keyBound();

    expect(await lifetimeOf(user.sessionId)).toEqual({ idle: 3600, absolute: 7200 });
  });

  it('applies higher lifetimes at rotation', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId, [], 30 * day);
    const attested = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    const attestedLifetime = await lifetimeOf(user.sessionId);
    await gateway.tollgate.services.deviceTrust.confirm(user.deviceId);
    clock.advance(3600);
    pairOf(await refreshWithProof(gateway, key, attested.refreshToken));

    expect(attestedLifetime).toEqual({ idle: 7200, absolute: 14400 });
    expect(await lifetimeOf(user.sessionId)).toEqual({ idle: 86400, absolute: 172800 });
  });

  it('ends a session that lower trust outlived', async () => {
    const { key, user } = await keyBound();
    await attest(user.deviceId, [], 30 * day);
    let pair = pairOf(await refreshWithProof(gateway, key, user.refreshToken));
    for (const seconds of [3000, 3000, 1500]) {
      clock.advance(seconds);
      pair = pairOf(await refreshWithProof(gateway, key, pair.refreshToken));
    }
    await gateway.tollgate.services.deviceTrust.recordIntegritySignals(user.deviceId, ['jailbroken']);
    const response = await refreshWithProof(gateway, key, pair.refreshToken);

    expect(errorCode(response)).toBe('SESSION_EXPIRED');
  });
});


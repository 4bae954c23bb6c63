import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ManualClock } from '../../../src/clock.ts';
import { errorCode, signUp, type SignedIn } from '../../helpers/flows.ts';
import { sql, startTestGateway, type TestGateway } from '../../helpers/harness.ts';
import {
  buildAssertion,
  buildAttestation,
  createAppAttestPki,
  createPlayIntegrityKeys,
  integrityPayload,
  integrityToken,
  testAppId,
  type AppAttestPki,
  type PlayIntegrityKeys,
} from './fixtures.ts';

const challengeMutation = 'mutation { attestationChallenge { challenge expiresAt } }';
const attestMutation = 'mutation($evidence: AttestationEvidenceInput!) { attestDevice(evidence: $evidence) { status reason integritySignals trust expiresAt } }';
const assertMutation = 'mutation($input: AppAttestAssertionInput!) { assertDevice(input: $input) { status reason trust expiresAt } }';

interface Result {
  status: string;
  reason: string | null;
  integritySignals: string[];
  trust: string;
  expiresAt: string | null;
}

let gateway: TestGateway;
let clock: ManualClock;
let keys: PlayIntegrityKeys;
let pki: AppAttestPki;

async function newChallenge(user: SignedIn): Promise<string> {
  const response = await gateway.graphql(challengeMutation, { token: user.accessToken });
  return (response.body.data?.attestationChallenge as { challenge: string }).challenge;
}

async function deviceIdOf(user: SignedIn): Promise<string> {
  const rows = await sql<{ device_id: string }>(gateway, 'SELECT device_id FROM sessions WHERE id = $1', [user.sessionId]);
  return rows[0]?.device_id as string;
}

/** Marks the user's device as holding a proven key, the precondition of any trust above UNKNOWN. */
async function bindKey(user: SignedIn): Promise<void> {
  await sql(gateway, 'UPDATE devices SET jkt = $1, key_bound_at = now() WHERE id = $2', [randomBytes(32).toString('base64url'), await deviceIdOf(user)]);
}

async function attest(user: SignedIn, evidence: Record<string, unknown>) {
  return gateway.graphql(attestMutation, { token: user.accessToken, variables: { evidence } });
}

async function playIntegrity(user: SignedIn, challenge: string, change: (payload: ReturnType<typeof integrityPayload>) => void = () => {}): Promise<Result> {
  const payload = integrityPayload(challenge, clock.now(), keys.certificateDigest);
  change(payload);
  const response = await attest(user, { kind: 'PLAY_INTEGRITY', challenge, payload: await integrityToken(payload, keys) });
  return response.body.data?.attestDevice as Result;
}

async function appAttest(user: SignedIn) {
  const challenge = await newChallenge(user);
  const built = await buildAttestation(pki, { challenge });
  const response = await attest(user, { kind: 'APP_ATTEST', challenge, payload: built.attestation, keyId: built.keyId });
  return { built, result: response.body.data?.attestDevice as Result };
}

async function assertDevice(user: SignedIn, privateKey: Parameters<typeof buildAssertion>[0], counter: number): Promise<Result> {
  const challenge = await newChallenge(user);
  const assertion = buildAssertion(privateKey, { clientData: Buffer.from(challenge, 'utf8'), counter });
  const response = await gateway.graphql(assertMutation, { token: user.accessToken, variables: { input: { challenge, assertion } } });
  return response.body.data?.assertDevice as Result;
}

async function deviceRow(user: SignedIn) {
  const rows = await sql<Record<string, unknown>>(gateway, 'SELECT * FROM devices WHERE id = $1', [await deviceIdOf(user)]);
  return rows[0] as Record<string, unknown>;
}

async function auditRows(user: SignedIn) {
  return sql<{ type: string; reason: string | null; data: Record<string, unknown> }>(gateway, 'SELECT type, reason, data FROM audit_events WHERE device_id = $1 ORDER BY id', [await deviceIdOf(user)]);
}

beforeAll(async () => {
  keys = createPlayIntegrityKeys();
  clock = new ManualClock();
  pki = await createAppAttestPki(clock.now());
  gateway = await startTestGateway({
    clock,
    env: {
      ...keys.env,
      TOLLGATE_APP_ATTEST_APP_ID: testAppId,
      TOLLGATE_APP_ATTEST_ROOT_CERTIFICATE: pki.rootPem,
      TOLLGATE_ATTESTATION_VALIDITY_SECONDS: '3600',
      // Every test signs up its own users from one address.
      TOLLGATE_RATE_LIMIT_SIGNUP_IP: '1000/3600',
    },
  });
});

afterAll(async () => {
  await gateway?.close();
});

describe('attestation challenge', () => {
  it('returns 32 random bytes with a 5-minute expiry', async () => {
    const user = await signUp(gateway);
    const response = await gateway.graphql(challengeMutation, { token: user.accessToken });
    const issued = response.body.data?.attestationChallenge as { challenge: string; expiresAt: string };

    expect(Buffer.from(issued.challenge, 'base64url')).toHaveLength(32);
    expect(Date.parse(issued.expiresAt) - clock.now().getTime()).toBe(300_000);
  });

  it('requires an access token', async () => {
    const response = await gateway.graphql(challengeMutation);

    expect(errorCode(response)).toBe('UNAUTHENTICATED');
  });

  it('is consumed by a failed attempt', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    const first = await playIntegrity(user, challenge, (payload) => (payload.deviceIntegrity.deviceRecognitionVerdict = []));
    const second = await playIntegrity(user, challenge);

    expect(first.reason).toBe('device_integrity_missing');
    expect(second.reason).toBe('challenge_reused');
  });

  it('is consumed by a passed attempt', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    const first = await playIntegrity(user, challenge);
    const second = await playIntegrity(user, challenge);

    expect(first.status).toBe('PASSED');
    expect(second.reason).toBe('challenge_reused');
  });

  it('lets one of concurrent uses proceed', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    const results = await Promise.all([playIntegrity(user, challenge), playIntegrity(user, challenge), playIntegrity(user, challenge)]);

    expect(results.filter((result) => result.status === 'PASSED')).toHaveLength(1);
    expect(results.filter((result) => result.reason === 'challenge_reused')).toHaveLength(2);
  });

  it('expires after its lifetime', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    clock.advance(301);

    expect((await playIntegrity(user, challenge)).reason).toBe('challenge_expired');
  });

  it('works until its lifetime ends', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    clock.advance(299);

    expect((await playIntegrity(user, challenge)).status).toBe('PASSED');
  });

  it('belongs to the session it was issued to', async () => {
    const owner = await signUp(gateway);
    const other = await signUp(gateway);
    const challenge = await newChallenge(owner);

    expect((await playIntegrity(other, challenge)).reason).toBe('challenge_wrong_device');
  });

  it('rejects a challenge never issued', async () => {
    const user = await signUp(gateway);

    expect((await playIntegrity(user, randomBytes(32).toString('base64url'))).reason).toBe('challenge_unknown');
  });

  it('rejects a malformed challenge as input', async () => {
    const user = await signUp(gateway);
    const response = await attest(user, { kind: 'PLAY_INTEGRITY', challenge: 'short', payload: 'a.b.c.d.e' });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('evidence.challenge');
  });

  it('audits a challenge failure without touching the device', async () => {
    const user = await signUp(gateway);
    await playIntegrity(user, randomBytes(32).toString('base64url'));

    expect((await auditRows(user)).map((row) => [row.type, row.reason])).toContainEqual(['device.attestation_failed', 'challenge_unknown']);
    expect((await deviceRow(user)).attestation_status).toBeNull();
  });
});

describe('attestDevice with Play Integrity', () => {
  it('raises a key-bound device to ATTESTED', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const result = await playIntegrity(user, await newChallenge(user));

    expect(result.status).toBe('PASSED');
    expect(result.trust).toBe('ATTESTED');
    expect(Date.parse(result.expiresAt as string) - clock.now().getTime()).toBe(3_600_000);
  });

  it('stores the verdict on the device', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    await playIntegrity(user, await newChallenge(user), (payload) => (payload.accountDetails.appLicensingVerdict = 'UNLICENSED'));
    const row = await deviceRow(user);

    expect(row.attestation_kind).toBe('PLAY_INTEGRITY');
    expect(row.attestation_status).toBe('PASSED');
    expect((row.attested_at as Date).getTime()).toBe(clock.now().getTime());
    expect((row.attestation_expires_at as Date).getTime()).toBe(clock.now().getTime() + 3_600_000);
    expect(row.integrity_signals).toEqual(['unlicensed_app']);
    expect(row.trust).toBe('ATTESTED');
  });

  it('keeps a device without a bound key at UNKNOWN', async () => {
    const user = await signUp(gateway);

    expect((await playIntegrity(user, await newChallenge(user))).trust).toBe('UNKNOWN');
  });

  it('keeps BASIC trust for basic integrity only', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const result = await playIntegrity(user, await newChallenge(user), (payload) => (payload.deviceIntegrity.deviceRecognitionVerdict = ['MEETS_BASIC_INTEGRITY']));

    expect(result.status).toBe('PASSED');
    expect(result.integritySignals).toEqual(['basic_integrity_only']);
    expect(result.trust).toBe('BASIC');
  });

  it('lowers trust after a failed attestation', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const passed = await playIntegrity(user, await newChallenge(user));
    const failed = await playIntegrity(user, await newChallenge(user), (payload) => (payload.appIntegrity.packageName = 'com.example.repackaged'));
    const row = await deviceRow(user);

    expect(passed.trust).toBe('ATTESTED');
    expect(failed.status).toBe('FAILED');
    expect(failed.reason).toBe('app_package_mismatch');
    expect(failed.trust).toBe('BASIC');
    expect(row.attestation_status).toBe('FAILED');
    expect(row.attestation_expires_at).toBeNull();
  });

  it('audits results with reasons and no evidence', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const challenge = await newChallenge(user);
    const token = await integrityToken(integrityPayload(challenge, clock.now(), keys.certificateDigest), keys);
    await attest(user, { kind: 'PLAY_INTEGRITY', challenge, payload: token });
    await playIntegrity(user, await newChallenge(user), (payload) => (payload.requestDetails.timestampMillis = String(clock.now().getTime() - 600_000)));
    const rows = (await auditRows(user)).filter((row) => row.type.startsWith('device.attest'));

    expect(rows.map((row) => [row.type, row.reason])).toEqual([
      ['device.attested', null],
      ['device.attestation_failed', 'timestamp_too_old'],
    ]);
    expect(rows[0]?.data).toMatchObject({ kind: 'PLAY_INTEGRITY', trust: 'ATTESTED' });
    expect(JSON.stringify(rows)).not.toContain(token.slice(0, 40));
    expect(gateway.logs.text()).not.toContain(token.slice(0, 40));
  });
});

describe('attestDevice with App Attest', () => {
  it('stores the attested key and raises trust', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const { built, result } = await appAttest(user);
    const row = await deviceRow(user);

    expect(result.status).toBe('PASSED');
    expect(result.trust).toBe('ATTESTED');
    expect(row.app_attest_key_id).toBe(built.keyId);
    expect((row.app_attest_public_key as Buffer).equals(built.publicKeySpki)).toBe(true);
    expect(row.app_attest_counter).toBe('0');
  });

  it('rejects a nonce for another challenge', async () => {
    const user = await signUp(gateway);
    const challenge = await newChallenge(user);
    const built = await buildAttestation(pki, { challenge: await newChallenge(user) });
    const response = await attest(user, { kind: 'APP_ATTEST', challenge, payload: built.attestation, keyId: built.keyId });

    expect((response.body.data?.attestDevice as Result).reason).toBe('nonce_mismatch');
  });

  it('requires the key id as input', async () => {
    const user = await signUp(gateway);
    const response = await attest(user, { kind: 'APP_ATTEST', challenge: await newChallenge(user), payload: 'AAAA' });

    expect(response.body.errors?.[0]?.extensions?.field).toBe('evidence.keyId');
  });
});

describe('assertDevice', () => {
  it('accepts increasing counters and rejects a replay', async () => {
    const user = await signUp(gateway);
    const { built } = await appAttest(user);

    expect((await assertDevice(user, built.leafPrivateKey, 1)).status).toBe('PASSED');
    expect((await assertDevice(user, built.leafPrivateKey, 1)).reason).toBe('counter_not_increasing');
    expect((await assertDevice(user, built.leafPrivateKey, 3)).status).toBe('PASSED');
    expect((await deviceRow(user)).app_attest_counter).toBe('3');
  });

  it('passes one of concurrent same-counter assertions', async () => {
    const user = await signUp(gateway);
    const { built } = await appAttest(user);
    const results = await Promise.all([1, 2, 3, 4].map(() => assertDevice(user, built.leafPrivateKey, 5)));

    expect(results.filter((result) => result.status === 'PASSED')).toHaveLength(1);
    expect(results.filter((result) => result.reason === 'counter_not_increasing')).toHaveLength(3);
    expect((await deviceRow(user)).app_attest_counter).toBe('5');
  });

  it('extends the attestation it proves', async () => {
    const user = await signUp(gateway);
    await bindKey(user);
    const { built } = await appAttest(user);
    // Less than the access-token lifetime, so the same token can still call assertDevice.
    clock.advance(200);
    const result = await assertDevice(user, built.leafPrivateKey, 1);

    expect(Date.parse(result.expiresAt as string) - clock.now().getTime()).toBe(3_600_000);
    expect(result.trust).toBe('ATTESTED');
  });

  it('rejects a device without an attested key', async () => {
    const user = await signUp(gateway);
    const privateKey = (await buildAttestation(pki, { challenge: 'unused' })).leafPrivateKey;

    expect((await assertDevice(user, privateKey, 1)).reason).toBe('device_not_attested');
  });

  it('rejects a signature by another key', async () => {
    const user = await signUp(gateway);
    await appAttest(user);
    const otherKey = (await buildAttestation(pki, { challenge: 'unused' })).leafPrivateKey;

    expect((await assertDevice(user, otherKey, 1)).reason).toBe('assertion_signature_invalid');
  });
});

describe('unconfigured platform', () => {
  let bare: TestGateway;

  beforeAll(async () => {
    bare = await startTestGateway({ env: { TOLLGATE_RATE_LIMIT_SIGNUP_IP: '1000/3600' } });
  });

  afterAll(async () => {
    await bare?.close();
  });

  it('rejects evidence of a kind not configured', async () => {
    const user = await signUp(bare);
    const challenge = ((await bare.graphql(challengeMutation, { token: user.accessToken })).body.data?.attestationChallenge as { challenge: string }).challenge;
    const response = await bare.graphql(attestMutation, { token: user.accessToken, variables: { evidence: { kind: 'PLAY_INTEGRITY', challenge, payload: 'a.b.c.d.e' } } });

    expect(errorCode(response)).toBe('BAD_USER_INPUT');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('evidence.kind');
  });
});

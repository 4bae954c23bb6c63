import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ManualClock } from '../../src/clock.ts';
import { sessionRiskKey, TableLocator } from '../../src/risk/index.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';
import { createDeviceKey, type DeviceKey } from '../helpers/dpop.ts';
import { codeOf, loginAt, newCredentials, refreshAt, signUpAt } from './support.ts';

const paris = '198.51.100.10';
const sydney = '203.0.113.10';
const geoTable = new TableLocator({
  '198.51.100.0/24': { latitude: 48.8566, longitude: 2.3522, country: 'FR' },
  '203.0.113.0/24': { latitude: -33.8688, longitude: 151.2093, country: 'AU' },
});

let deviceA: DeviceKey;
let deviceB: DeviceKey;

let gateway: TestGateway;
let clock: ManualClock;

beforeAll(async () => {
  gateway = await startTestGateway({
    env: {
      TOLLGATE_RISK_FAILED_LOGIN_WINDOW_SECONDS: '600',
      TOLLGATE_RISK_FAILED_LOGIN_ACCOUNT_THRESHOLD: '3',
      TOLLGATE_RISK_FANOUT_IP_THRESHOLD: '3',
      TOLLGATE_RISK_FANOUT_DEVICE_THRESHOLD: '3',
      TOLLGATE_RISK_REFRESH_BURST_WINDOW_SECONDS: '60',
      TOLLGATE_RISK_REFRESH_BURST_THRESHOLD: '3',
      TOLLGATE_RISK_REFRESH_SYNC_WINDOW_SECONDS: '10',
      TOLLGATE_RISK_REFRESH_SYNC_THRESHOLD: '3',
    },
  });
  clock = gateway.clock as ManualClock;
  deviceA = await createDeviceKey();
  deviceB = await createDeviceKey();
  gateway.tollgate.services.risk.useGeoLocator(geoTable);
});

afterAll(async () => {
  await gateway?.close();
});

interface DecisionRow {
  reason: string;
  data: { point: string; level: string; action: string; reasons: string[] };
}

async function lastDecision(userId: string): Promise<DecisionRow['data']> {
  const rows = await sql<DecisionRow>(gateway, `SELECT reason, data FROM audit_events WHERE type = 'risk.decision' AND user_id = $1 ORDER BY id DESC LIMIT 1`, [userId]);
  if (!rows[0]) throw new Error(`no risk decision for ${userId}`);
  return rows[0].data;
}

describe('new device signal', () => {
  it('stays quiet for the device the account registered', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.20', deviceA);
    const response = await loginAt(gateway, credentials, '192.0.2.20', deviceA);

    expect(response.status).toBe(200);
    expect((await lastDecision(user.userId)).reasons).not.toContain('new_device');
  });

  it('fires for another device key and raises the session to MEDIUM', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.21', deviceA);
    const response = await loginAt(gateway, credentials, '192.0.2.21', deviceB);
    const sessionId = (response.body.data?.login as { session: { id: string } }).session.id;
    const decision = await lastDecision(user.userId);

    expect(decision.reasons).toContain('new_device');
    expect(decision.level).toBe('MEDIUM');
    const [row] = await sql<{ risk_level: string }>(gateway, 'SELECT risk_level FROM sessions WHERE id = $1', [sessionId]);
    expect(row?.risk_level).toBe('MEDIUM');
    expect(await gateway.tollgate.services.state.get(sessionRiskKey(sessionId))).toBe('MEDIUM');
  });
});

describe('impossible travel signal', () => {
  it('denies Sydney one hour after Paris', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, paris, deviceA);
    expect((await loginAt(gateway, credentials, paris, deviceA)).status).toBe(200);

    clock.advance(3600);
    const response = await loginAt(gateway, credentials, sydney, deviceA);

    expect(codeOf(response)).toBe('RISK_DENIED');
    expect(response.status).toBe(403);
    expect(response.body.errors?.[0]?.extensions?.reasons).toContain('impossible_travel');
    expect((await lastDecision(user.userId)).action).toBe('deny');
  });

  it('allows Sydney a day after Paris', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, paris, deviceA);
    expect((await loginAt(gateway, credentials, paris, deviceA)).status).toBe(200);

    clock.advance(24 * 3600);
    const response = await loginAt(gateway, credentials, sydney, deviceA);

    expect(response.status).toBe(200);
    expect((await lastDecision(user.userId)).reasons).not.toContain('impossible_travel');
  });
});

describe('failed-login velocity signal', () => {
  it('counts failures until the window edge passes the first', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.30', deviceA);
    const start = clock.now().getTime();
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const failed = await loginAt(gateway, { ...credentials, password: 'wrong password' }, '192.0.2.30', deviceA);
      expect(codeOf(failed)).toBe('INVALID_CREDENTIALS');
      clock.advance(1);
    }

    clock.set(start + 599_000);
    expect((await loginAt(gateway, credentials, '192.0.2.30', deviceA)).status).toBe(200);
    expect((await lastDecision(user.userId)).reasons).toContain('failed_logins_account');

    clock.set(start + 600_000);
    expect((await loginAt(gateway, credentials, '192.0.2.30', deviceA)).status).toBe(200);
    expect((await lastDecision(user.userId)).reasons).not.toContain('failed_logins_account');
  });
});

describe('distinct-account fan-out signal', () => {
  it('denies the third account from one IP before checking its password', async () => {
    const users = [newCredentials(), newCredentials(), newCredentials()];
    for (const credentials of users) await signUpAt(gateway, credentials, '192.0.2.40');
    clock.advance(1);

    expect((await loginAt(gateway, users[0]!, '198.18.0.40')).status).toBe(200);
    expect((await loginAt(gateway, users[1]!, '198.18.0.40')).status).toBe(200);
    const third = await loginAt(gateway, users[2]!, '198.18.0.40');

    expect(codeOf(third)).toBe('RISK_DENIED');
    expect(third.body.errors?.[0]?.extensions?.reasons).toEqual(['account_fanout_ip']);
  });

  it('denies the third account from one device id across IPs', async () => {
    const users = [newCredentials(), newCredentials(), newCredentials()];
    for (const credentials of users) await signUpAt(gateway, credentials, '192.0.2.41');
    const headers = { 'x-device-id': 'shared-handset-1' };

    expect((await loginAt(gateway, users[0]!, '198.18.1.1', undefined, headers)).status).toBe(200);
    expect((await loginAt(gateway, users[1]!, '198.18.1.2', undefined, headers)).status).toBe(200);
    const third = await loginAt(gateway, users[2]!, '198.18.1.3', undefined, headers);

    expect(codeOf(third)).toBe('RISK_DENIED');
    expect(third.body.errors?.[0]?.extensions?.reasons).toEqual(['account_fanout_device']);
  });
});

describe('refresh signals', () => {
  it('suspends the device on the third refresh within a minute', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.50', deviceA);
    let token = user.refreshToken;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const response = await refreshAt(gateway, token, '192.0.2.50', deviceA);
      token = (response.body.data?.refreshSession as { refreshToken: string }).refreshToken;
      clock.advance(20);
    }
    const third = await refreshAt(gateway, token, '192.0.2.50', deviceA);

    expect(codeOf(third)).toBe('DEVICE_SUSPENDED');
    expect(third.status).toBe(403);
    const [device] = await sql<{ suspended_at: Date | null; suspend_reason: string }>(gateway, 'SELECT d.suspended_at, d.suspend_reason FROM devices d JOIN sessions s ON s.device_id = d.id WHERE s.id = $1', [user.sessionId]);
    expect(device?.suspended_at).not.toBeNull();
    expect(device?.suspend_reason).toBe('refresh_burst');
  });

  it('allows refreshes spaced beyond the burst window', async () => {
    const credentials = newCredentials();
    const user = await signUpAt(gateway, credentials, '192.0.2.51', deviceA);
    let token = user.refreshToken;
    for (let attempt = 0; attempt < 4; attempt += 1) {
      const response = await refreshAt(gateway, token, '192.0.2.51', deviceA);
      expect(response.status).toBe(200);
      token = (response.body.data?.refreshSession as { refreshToken: string }).refreshToken;
      clock.advance(61);
    }
  });

  it('raises sessions refreshing in step from one IP to MEDIUM', async () => {
    const users = [];
    for (let index = 0; index < 3; index += 1) users.push(await signUpAt(gateway, newCredentials(), '192.0.2.52'));
    clock.advance(60);
    for (const user of users) expect((await refreshAt(gateway, user.refreshToken, '198.18.2.2')).status).toBe(200);

    const [last] = await sql<{ risk_level: string }>(gateway, 'SELECT risk_level FROM sessions WHERE id = $1', [users[2]!.sessionId]);
    expect(last?.risk_level).toBe('MEDIUM');
    expect((await lastDecision(users[2]!.userId)).reasons).toContain('refresh_sync');
  });
});

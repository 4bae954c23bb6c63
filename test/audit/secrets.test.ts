import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isSecretKey, stripSecrets } from '../../src/audit/index.ts';
import { sql, startTestGateway, type TestGateway } from '../helpers/harness.ts';

const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMyJ9.c2lnbmF0dXJlLWJ5dGVz';

describe('audit secret guard', () => {
  it.each(['password', 'newPassword', 'refresh_token', 'accessToken', 'totpCode', 'code', 'privateKey', 'secret', 'clientSecret', 'authorization', 'otp', 'key', 'dpop'])('treats %s as a secret key', (key) => {
    expect(isSecretKey(key)).toBe(true);
  });

  it.each(['tokenId', 'parentTokenId', 'jti', 'kid', 'emailHash', 'reason', 'sessionId', 'errorCount', 'keyCount'])('keeps %s', (key) => {
    expect(isSecretKey(key)).toBe(false);
  });

  it('strips nested secrets and token-shaped values', () => {
    const { data, removed } = stripSecrets({ count: 2, nested: { totp_code: '123456', ok: true }, list: [jwt, 'plain'], note: `Bearer ${jwt}` });

    expect(data).toEqual({ count: 2, nested: { ok: true }, list: [null, 'plain'] });
    expect(removed.sort()).toEqual(['list[0]', 'nested.totp_code', 'note']);
  });
});

describe('audit record guard', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway();
    await gateway.tollgate.services.audit.record({ type: 'test.leaky', reason: jwt, data: { password: 'hunter2-hunter2', refreshToken: 'r'.repeat(43), safe: 'kept' } });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('stores no secret in the row', async () => {
    const [row] = await sql<{ text: string }>(gateway, `SELECT row_to_json(audit_events)::text AS text FROM audit_events WHERE type = 'test.leaky'`);

    expect(row?.text).not.toContain('hunter2');
    expect(row?.text).not.toContain('r'.repeat(43));
    expect(row?.text).not.toContain(jwt);
  });

  it('keeps the other members and lists the removed keys', async () => {
    const [row] = await sql<{ data: Record<string, unknown> }>(gateway, `SELECT data FROM audit_events WHERE type = 'test.leaky'`);

    expect(row?.data).toEqual({ safe: 'kept', removedKeys: ['password', 'refreshToken', 'reason'] });
  });

  it('writes no secret to the log', () => {
    expect(gateway.logs.text()).not.toContain('hunter2');
    expect(gateway.logs.text()).not.toContain(jwt);
  });
});

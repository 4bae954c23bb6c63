import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signUp } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

describe('authenticated LOW-tier request path', () => {
  it('sends no SQL statement to PostgreSQL', async () => {
    const user = await signUp(gateway);
    // The first request verifies the signature; later ones are served from the verification cache.
    await gateway.graphql('{ me { id } }', { token: user.accessToken });
    // The audit chainer links events in the background; it is stopped so only the request path counts.
    await gateway.tollgate.services.auditChainer.stop();
    await gateway.tollgate.services.auditChainer.chainAll();
    const before = gateway.tollgate.services.database.queryCount();

    for (let i = 0; i < 5; i += 1) {
      const response = await gateway.graphql('{ me { id } }', { token: user.accessToken });
      expect(response.body.data?.me).toEqual({ id: user.userId });
    }

    expect(gateway.tollgate.services.database.queryCount()).toBe(before);
  });

  it('counts statements when a field does read the database', async () => {
    const user = await signUp(gateway);
    const before = gateway.tollgate.services.database.queryCount();
    await gateway.graphql('{ me { email } }', { token: user.accessToken });

    expect(gateway.tollgate.services.database.queryCount()).toBeGreaterThan(before);
  });
});

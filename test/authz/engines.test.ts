import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signUp, type SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let compiled: TestGateway;
let shield: TestGateway;
let user: SignedIn;

beforeAll(async () => {
  compiled = await startTestGateway({ env: { TOLLGATE_AUTHZ_ENGINE: 'compiled' } });
  shield = await startTestGateway({ shareWith: compiled, env: { TOLLGATE_AUTHZ_ENGINE: 'shield' } });
  user = await signUp(compiled);
});

afterAll(async () => {
  await shield?.close();
  await compiled?.close();
});

const cases: Array<[string, string, boolean]> = [
  ['public list with refused item fields', '{ catalog(first: 3) { id name price stock } }', false],
  ['same list signed in', '{ catalog(first: 3) { id name price stock } }', true],
  ['aliases and fragments', '{ a: me { id } b: me { ...F } } fragment F on User { id email }', true],
  ['anonymous protected root', '{ me { id } }', false],
  ['partial root refusal', '{ serverInfo { version } me { id } }', false],
  ['nested sessions', '{ mySessions { id current device { platform } } }', true],
  ['unknown-tier-free payload', 'mutation { logout }', false],
];

describe('authorization engines', () => {
  it.each(cases)('agree on %s', async (_name, query, signedIn) => {
    const token = signedIn ? user.accessToken : undefined;
    const [fromCompiled, fromShield] = await Promise.all([compiled.graphql(query, { token }), shield.graphql(query, { token })]);

    expect(fromCompiled.status).toBe(fromShield.status);
    expect(fromCompiled.headers['www-authenticate']).toEqual(fromShield.headers['www-authenticate']);
    expect(fromCompiled.body).toEqual(fromShield.body);
  });

  it('refuses stock below device trust', async () => {
    const response = await compiled.graphql('{ catalog(first: 1) { stock } }', { token: user.accessToken });

    expect(response.body.errors?.[0]?.extensions?.code).toBe('DEVICE_TRUST_REQUIRED');
    expect(response.body.errors?.[0]?.path).toEqual(['catalog', 0, 'stock']);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { sanitizeRequestMessage } from '../../src/request-errors.ts';
import { signUpMutation } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

let gateway: TestGateway;

beforeAll(async () => {
  gateway = await startTestGateway();
});

afterAll(async () => {
  await gateway?.close();
});

function inject(options: { method?: string; url?: string; headers?: Record<string, string>; payload?: string }) {
  return gateway.tollgate.gateway.app.inject({ method: (options.method ?? 'POST') as 'POST', url: options.url ?? '/graphql', headers: options.headers, payload: options.payload });
}

describe('variable errors', () => {
  it('repeat no submitted password', async () => {
    const password = 'Correct-horse-9!';
    const response = await gateway.graphql(signUpMutation, { variables: { input: { email: 'a@example.com', password, device: { platform: 'IOS' }, role: 'admin' } } });
    const error = response.body.errors?.[0];

    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).not.toContain(password);
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.extensions?.field).toBe('input');
    expect(error?.message).toContain('"role" is not defined');
  });

  it('repeat no private key and suggest no field', async () => {
    const d = 'n1T2mX7q9xZ3kL8pV5wR0sY4uB6cE1gH2jK3mN4pQ5r';
    const publicKey = { kty: 'EC', crv: 'P-256', x: 'A'.repeat(43), y: 'B'.repeat(43), d };
    const response = await gateway.graphql(signUpMutation, { variables: { input: { email: 'b@example.com', password: 'long enough password', device: { platform: 'IOS', publicKey } } } });
    const text = JSON.stringify(response.body);

    expect(text).not.toContain(d);
    expect(text).not.toContain('Did you mean');
    expect(response.body.errors?.[0]?.extensions?.field).toBe('input.device.publicKey');
  });

  it('drop the value from a scalar coercion message', () => {
    const { message, field } = sanitizeRequestMessage('Variable "$token" got invalid value 123456; String cannot represent a non string value: 123456');

    expect(message).toBe('Variable "$token" has an invalid value at "token": String cannot represent a non string value.');
    expect(field).toBe('token');
  });
});

describe('HTTP-level errors', () => {
  it.each([
    ['malformed JSON', { payload: '{"query": "{ serverInfo { version } }"', headers: { 'content-type': 'application/json' } }, 400],
    ['a body over the limit', { payload: JSON.stringify({ query: `{ serverInfo { version } } #${'x'.repeat(300 * 1024)}` }), headers: { 'content-type': 'application/json' } }, 413],
    ['a form post', { payload: 'query=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
    ['an unknown route', { method: 'PUT', payload: '{}', headers: { 'content-type': 'application/json' } }, 404],
  ])('answers %s with a contract code', async (_name, request, status) => {
    const response = await inject(request);
    const body = response.json() as { errors?: Array<{ message: string; extensions?: { code?: string } }> };

    expect(response.statusCode).toBe(status);
    expect(body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(response.body).not.toContain('FST_ERR');
  });
});

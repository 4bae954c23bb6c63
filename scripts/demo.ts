// Drives a mobile app's journey against a running gateway over HTTP and prints each step. The
// journey signs up, reads the profile, refreshes, and replays an old refresh token, which revokes the
// session. It then logs in again, logs out, and checks that the old access token is rejected.
//   TOLLGATE_URL=http://127.0.0.1:4000 npm run demo
import { randomUUID } from 'node:crypto';

const baseUrl = (process.env.TOLLGATE_URL ?? 'http://127.0.0.1:4000').replace(/\/$/, '');
const device = { platform: 'IOS', model: 'iPhone15,2', osVersion: '18.1', appVersion: '2.4.0' };

interface GraphQLResult {
  status: number;
  data?: Record<string, any> | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

async function call(query: string, variables: Record<string, unknown> = {}, accessToken?: string): Promise<GraphQLResult> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (accessToken) headers.authorization = `Bearer ${accessToken}`;
  const response = await fetch(`${baseUrl}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: response.status, ...((await response.json()) as object) };
}

let stepNumber = 0;
function step(title: string, result: GraphQLResult, expectation: string, ok: boolean): void {
  stepNumber += 1;
  const outcome = result.errors?.length ? `${result.errors[0]?.extensions?.code}: ${result.errors[0]?.message}` : 'ok';
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${stepNumber}. ${title}\n      HTTP ${result.status}, ${outcome}\n      expected: ${expectation}`);
  if (!ok) process.exitCode = 1;
}

const short = (token: string) => `${token.slice(0, 12)}…`;
const tokenFields = 'accessToken refreshToken tokenType accessTokenExpiresAt';
const authFields = `__typename ... on AuthSuccess { tokens { ${tokenFields} } user { id email } session { id } }`;

try {
  await fetch(`${baseUrl}/healthz`);
} catch {
  console.error(`demo: no gateway responds at ${baseUrl}; start one with \`npm start\` or set TOLLGATE_URL`);
  process.exit(2);
}

const email = `demo-${randomUUID().slice(0, 8)}@example.com`;
const password = `demo password ${randomUUID()}`;

const signUp = await call(`mutation($input: SignUpInput!) { signUp(input: $input) { ${authFields} } }`, { input: { email, password, device } });
const first = signUp.data?.signUp?.tokens;
step(`sign up as ${email}`, signUp, 'AuthSuccess with a token pair', Boolean(first));
if (!first) process.exit(1);
console.log(`      access ${short(first.accessToken)} refresh ${short(first.refreshToken)} (${first.tokenType})`);

const me = await call('{ me { id email } }', {}, first.accessToken);
step('query me with the access token', me, 'the signed-up user', me.data?.me?.email === email);

const refreshQuery = `mutation($token: String!) { refreshSession(refreshToken: $token) { ${tokenFields} } }`;
const second = await call(refreshQuery, { token: first.refreshToken });
step('refresh the session', second, 'a new pair; the first refresh token is now rotated', Boolean(second.data?.refreshSession));
const third = await call(refreshQuery, { token: second.data?.refreshSession?.refreshToken });
step('refresh again', third, 'a newer pair', Boolean(third.data?.refreshSession));

const replay = await call(refreshQuery, { token: first.refreshToken });
step('replay the first, long-rotated refresh token (as a thief would)', replay, 'REFRESH_TOKEN_REUSED, session revoked', replay.errors?.[0]?.extensions?.code === 'REFRESH_TOKEN_REUSED');

const afterTheft = await call(refreshQuery, { token: third.data?.refreshSession?.refreshToken });
step('refresh with the newest token of the revoked family', afterTheft, 'SESSION_REVOKED', afterTheft.errors?.[0]?.extensions?.code === 'SESSION_REVOKED');

const login = await call(`mutation($input: LoginInput!) { login(input: $input) { ${authFields} } }`, { input: { email, password, device } });
const fresh = login.data?.login?.tokens;
step('log in again', login, 'AuthSuccess with a new session', Boolean(fresh));

const logout = await call('mutation { logout }', {}, fresh?.accessToken);
step('log out', logout, 'true', logout.data?.logout === true);

const stale = await call('{ me { id } }', {}, fresh?.accessToken);
step('query me with the logged-out access token', stale, 'HTTP 401 TOKEN_REVOKED', stale.status === 401 && stale.errors?.[0]?.extensions?.code === 'TOKEN_REVOKED');

console.log(process.exitCode ? '\ndemo finished with failures' : '\ndemo finished: every step behaved as expected');

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { decodeJwt } from 'jose';

import { totpCode } from '../../src/accounts/totp.ts';
import type { ManualClock } from '../../src/clock.ts';
import type { SignedIn } from '../helpers/flows.ts';
import { startTestGateway, type TestGateway } from '../helpers/harness.ts';

/**
 * Tier overrides for tests over HTTP. Device trust and DPoP proofs come from other modules, so a
 * test client has neither: these tiers drop them and keep every other requirement of the built-in
 * tiers. The unit tests of evaluatePolicy cover trust and DPoP with built principals.
 */
export const tiersWithoutDevice = ['tiers:', '  MEDIUM: { minDeviceTrust: null }', '  HIGH: { minDeviceTrust: null }', '  CRITICAL: { minDeviceTrust: null, requireDpop: false }', ''].join('\n');

export function writeTempFile(name: string, text: string): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tollgate-test-')), name);
  writeFileSync(file, text);
  return file;
}

/** A risk policy that allows every login and refresh, so responses depend on the tiers alone. */
const allowAllRisk = JSON.stringify({
  actions: {
    login: { LOW: 'allow', MEDIUM: 'allow', HIGH: 'allow' },
    refresh: { LOW: 'allow', MEDIUM: 'allow', HIGH: 'allow' },
  },
});

/**
 * Starts a gateway whose tiers ignore device trust and DPoP, through TOLLGATE_POLICY_FILE as a
 * deployment would. Risk decisions are off (no assessed tier, every login allowed), so each response
 * depends on the tiers alone.
 */
export function startGatewayWithoutDeviceTiers(env: Record<string, string> = {}): Promise<TestGateway> {
  return startTestGateway({
    env: {
      TOLLGATE_POLICY_FILE: writeTempFile('tiers.yaml', tiersWithoutDevice),
      TOLLGATE_RISK_POLICY_FILE: writeTempFile('risk.json', allowAllRisk),
      TOLLGATE_RISK_ASSESSED_TIERS: 'NONE',
      ...env,
    },
  });
}

export interface AccessClaimsView {
  sid: string;
  did: string;
  acr: string;
  amr: string[];
  auth_time: number;
  scope: string;
}

export function claimsOf(accessToken: string): AccessClaimsView {
  return decodeJwt(accessToken) as unknown as AccessClaimsView;
}

/**
 * Issues an access token for an existing session with chosen scopes, acr and auth_time, signed by
 * the gateway's key ring: the same token a sign-in or step-up with those facts would carry.
 */
export async function issueToken(gateway: TestGateway, user: SignedIn, options: { acr?: string; amr?: string[]; ageSeconds?: number; scopes?: string[] } = {}): Promise<string> {
  const claims = claimsOf(user.accessToken);
  const now = gateway.clock.now().getTime();
  const issued = await gateway.tollgate.services.access.issue({
    userId: user.userId,
    sessionId: claims.sid,
    deviceId: claims.did,
    scopes: options.scopes ?? claims.scope.split(' '),
    acr: options.acr ?? 'aal1',
    amr: options.amr ?? ['pwd'],
    authTime: new Date(now - (options.ageSeconds ?? 0) * 1000),
  });
  return issued.token;
}

/** Returns the clock of a test gateway, which startTestGateway always makes a ManualClock. */
export function manualClock(gateway: TestGateway): ManualClock {
  return gateway.clock as ManualClock;
}

/** Moves the gateway clock to the start of the next TOTP step, so the next code is new. */
export function nextTotpStep(gateway: TestGateway): void {
  const clock = manualClock(gateway);
  const intoStep = clock.now().getTime() % 30_000;
  clock.advance((30_000 - intoStep) / 1000);
}

export function codeAt(gateway: TestGateway, secret: string): string {
  return totpCode(secret, gateway.clock.now());
}

export const enrollMutation = 'mutation { enrollTotp { secret otpauthUri expiresAt } }';
export const confirmMutation = 'mutation($code: String!) { confirmTotp(code: $code) }';
export const stepUpMutation = 'mutation($input: StepUpInput!) { stepUp(input: $input) { accessToken refreshToken tokenType } }';

/** Enrols and confirms TOTP for a signed-in user; returns the secret. */
export async function enableTotp(gateway: TestGateway, user: SignedIn): Promise<string> {
  const enrolled = await gateway.graphql(enrollMutation, { token: user.accessToken });
  const secret = (enrolled.body.data?.enrollTotp as { secret: string } | null)?.secret;
  if (!secret) throw new Error(`enrollTotp failed: ${JSON.stringify(enrolled.body.errors)}`);
  const confirmed = await gateway.graphql(confirmMutation, { token: user.accessToken, variables: { code: codeAt(gateway, secret) } });
  if (confirmed.body.data?.confirmTotp !== true) throw new Error(`confirmTotp failed: ${JSON.stringify(confirmed.body.errors)}`);
  return secret;
}

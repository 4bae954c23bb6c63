import { randomUUID } from 'node:crypto';

import type { AuditEvent, AuditLog } from '../audit/index.ts';
import { sessionScopesFor } from '../authz/roles.ts';
import type { Clock } from '../clock.ts';
import { open, randomToken, seal, sha256 } from '../crypto/index.ts';
import type { SessionLifetime } from '../devices/config.ts';
import type { DpopVerifier, HttpRequestFacts, VerifiedProof } from '../devices/dpop.ts';
import { deviceTrustSelect, type DeviceTrustRow, type TrustPolicy } from '../devices/trust.ts';
import { TollgateError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RiskLevel } from '../authz/principal.ts';
import type { EdgeLocation } from '../risk/geo.ts';
import type { RiskEngine } from '../risk/index.ts';
import type { Db } from '../store/db.ts';
import type { AccessTokenService } from '../tokens/access.ts';
import { deserializePair, serializePair, type TokenPair } from '../tokens/pair.ts';
import type { RevocationView } from './revocation.ts';
import type { RefreshRead, RefreshSql, RotationWrite } from './rotation-sql.ts';

export interface SessionConfig {
  idleSeconds: number;
  absoluteSeconds: number;
  refreshGraceSeconds: number;
  masterKey: Buffer;
  /** Whether a refresh of a key-bound session without a proof from its device key also revokes the session. */
  refreshMismatchRevokes?: boolean;
}

export interface SessionServiceDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  config: SessionConfig;
  access: AccessTokenService;
  audit: AuditLog;
  revocation: RevocationView;
  /** Checks the DPoP proofs that refreshes of key-bound sessions need. */
  dpop?: DpopVerifier;
  /** Sets session lifetimes by device trust; the configured idle and absolute lifetimes without it. */
  trustPolicy?: TrustPolicy;
  /** Refresh rate limits, device suspension and refresh risk decisions. */
  risk: RiskEngine;
  /** Driver-level SQL for the read of every refresh and the write of the common rotation. */
  refreshSql: RefreshSql;
}

/** Origin of a request (address, user agent, HTTP facts), recorded with sessions and audit events. */
export interface RequestFacts {
  ip?: string | undefined;
  userAgent?: string | undefined;
  /** The HTTP request, for its DPoP proof; absent outside HTTP. */
  http?: HttpRequestFacts | undefined;
  /** `X-Device-Id`, when the app sent one. */
  deviceHint?: string | undefined;
  /** Location headers of a trusted edge proxy; set only when the socket peer is one. */
  edgeLocation?: EdgeLocation | undefined;
}

export interface NewSession {
  userId: string;
  deviceId: string;
  scopes: string[];
  acr: string;
  amr: string[];
  authTime: Date;
  jkt?: string | null;
  /** The sign-in's risk level; LOW when omitted. */
  riskLevel?: RiskLevel | undefined;
}

type Transaction = Parameters<Parameters<Db['$transaction']>[0]>[0];

/** Session lifetimes for the device's trust at a rotation: the idle lifetime and the absolute end. */
interface RotationLifetime {
  idleSeconds: number;
  absoluteExpiresAt: Date;
}

type RotationOutcome =
  | { kind: 'rotated'; pair: TokenPair; sessionId: string; userId: string; deviceId: string }
  | { kind: 'grace'; pair: TokenPair; sessionId: string }
  | { kind: 'reused'; sessionId: string; userId: string; deviceId: string }
  | { kind: 'mismatch'; revoked: boolean; sessionId: string }
  | { kind: 'failed'; code: 'REFRESH_TOKEN_INVALID' | 'SESSION_EXPIRED' | 'SESSION_REVOKED'; reason: string; sessionId?: string; userId?: string };

/** The session facts a rotation copies into the successor's access token. */
type RotatingSession = { id: string; userId: string; deviceId: string; scopes: string[]; acr: string; amr: string[]; authTime: Date; absoluteExpiresAt: Date; device: { jkt: string | null } };

const graceContext = (tokenId: string) => `refresh-grace:${tokenId}`;

export function hashRefreshToken(token: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(sha256(token));
}

/** Matches the shape of our refresh tokens, so garbage is refused before it reaches the database. */
const refreshTokenShape = /^[A-Za-z0-9_-]{43}$/;

/**
 * Session lifecycle: start, refresh with rotation and reuse detection, revoke, list.
 *
 * Every refresh token belongs to one session, and the tokens of a session form its family. Rotation
 * takes a row lock on the session, so concurrent refreshes of one family run one at a time and never
 * fork it. The first rotates. The others find the token rotated and, inside the grace window, receive
 * the same successor pair.
 */
export class SessionService {
  constructor(private readonly deps: SessionServiceDeps) {}

  /** Creates a session with its first refresh token and access token. */
  async start(input: NewSession, facts: RequestFacts, db: Transaction | Db = this.deps.db): Promise<{ sessionId: string; pair: TokenPair }> {
    const now = this.deps.clock.now();
    const sessionId = randomUUID();
    const lifetime = await this.startLifetime(db, input.deviceId, now);
    const scopes = await sessionScopesFor(db, input.userId, input.scopes);
    const absoluteExpiresAt = new Date(now.getTime() + lifetime.absoluteSeconds * 1000);
    const idleExpiresAt = this.idleExpiry(now, absoluteExpiresAt, lifetime.idleSeconds);
    const refreshToken = randomToken();

    await db.session.create({
      data: {
        id: sessionId,
        userId: input.userId,
        deviceId: input.deviceId,
        scopes,
        acr: input.acr,
        amr: input.amr,
        authTime: input.authTime,
        createdAt: now,
        lastUsedAt: now,
        idleExpiresAt,
        absoluteExpiresAt,
        lastIp: facts.ip ?? null,
        userAgent: facts.userAgent?.slice(0, 256) ?? null,
        riskLevel: input.riskLevel ?? 'LOW',
      },
    });
    await db.refreshToken.create({
      data: { id: randomUUID(), sessionId, tokenHash: hashRefreshToken(refreshToken), createdAt: now, expiresAt: idleExpiresAt },
    });
    const access = await this.deps.access.issue({ ...input, scopes, sessionId });
    await this.deps.audit.record({ type: 'token.issued', userId: input.userId, sessionId, deviceId: input.deviceId, ip: facts.ip, data: { jti: access.claims.jti } }, db);

    return {
      sessionId,
      pair: {
        accessToken: access.token,
        accessTokenExpiresAt: access.expiresAt,
        refreshToken,
        refreshTokenExpiresAt: idleExpiresAt,
        tokenType: input.jkt ? 'DPoP' : 'Bearer',
      },
    };
  }

  private idleExpiry(now: Date, absoluteExpiresAt: Date, idleSeconds = this.deps.config.idleSeconds): Date {
    return new Date(Math.min(now.getTime() + idleSeconds * 1000, absoluteExpiresAt.getTime()));
  }

  /**
   * Exchanges a refresh token for a new pair. Throws `REFRESH_TOKEN_INVALID`, `SESSION_EXPIRED`,
   * `SESSION_REVOKED`, or `REFRESH_TOKEN_REUSED` after revoking the session of a replayed token. A
   * key-bound session also throws `DPOP_PROOF_INVALID` for an invalid proof and `DEVICE_MISMATCH` for
   * a missing proof or one from another key.
   */
  async refresh(refreshToken: string, facts: RequestFacts): Promise<TokenPair> {
    if (!refreshTokenShape.test(refreshToken)) {
      await this.deps.audit.record({ type: 'refresh.failed', ip: facts.ip, reason: 'malformed_token' });
      throw new TollgateError('REFRESH_TOKEN_INVALID');
    }

    const proof = await this.refreshProof(facts);
    const tokenHash = hashRefreshToken(refreshToken);
    const pending: AuditEvent[] = [];
    const read = await this.deps.refreshSql.read(tokenHash);
    if (read) await this.assessRefreshRisk(read, tokenHash, facts, pending);
    const common = await this.rotateCommon(read, facts, proof, pending).catch(async (error: unknown) => {
      // Nothing was written: the risk decision is still recorded before the error goes back.
      for (const event of pending) await this.deps.audit.record(event).catch(() => undefined);
      throw error;
    });
    const outcome =
      common ??
      (await this.deps.db.$transaction(
        async (tx) => {
          for (const event of pending) await this.deps.audit.record(event, tx);
          return this.rotate(tx, tokenHash, facts, proof);
        },
        { maxWait: 10_000, timeout: 15_000 },
      ));

    switch (outcome.kind) {
      case 'rotated':
        return outcome.pair;
      case 'grace':
        return outcome.pair;
      case 'reused':
        // The revocation is committed. A broadcast failure is logged and the other instances catch up
        // on their next reload, but the caller still learns that the token was reused.
        await this.broadcastRevocation([outcome.sessionId]).catch(() => undefined);
        throw new TollgateError('REFRESH_TOKEN_REUSED');
      case 'mismatch':
        if (outcome.revoked) await this.broadcastRevocation([outcome.sessionId]).catch(() => undefined);
        throw new TollgateError('DEVICE_MISMATCH', "The refresh needs a DPoP proof signed by the session's device key.");
      case 'failed':
        throw new TollgateError(outcome.code);
    }
  }

  /**
   * Runs the refresh rate limit, the device suspension check and the refresh risk decision on the
   * facts the refresh's read found, and throws to reject. It runs before the rotation's transaction,
   * because its writes take other pool connections, which concurrent rotations waiting on the
   * session lock could all hold. Revoked sessions are left for `rotate` to report.
   */
  private async assessRefreshRisk({ session }: RefreshRead, tokenHash: Uint8Array<ArrayBuffer>, facts: RequestFacts, pending: AuditEvent[]): Promise<void> {
    if (session.revokedAt) return;
    const { device } = session;
    // A prefix of the token's hash names the presented token in the burst window without storing it.
    const tokenKey = Buffer.from(tokenHash).toString('base64url').slice(0, 16);
    await this.deps.risk.assessRefresh(
      {
        userId: session.userId,
        sessionId: session.id,
        deviceId: session.deviceId,
        sessionRiskLevel: session.riskLevel,
        facts,
        tokenKey,
        device: { id: session.deviceId, trust: device.trust, integritySignals: device.integritySignals, suspendedAt: device.suspendedAt },
      },
      pending,
    );
  }

  /**
   * Rotates a current token of a live session in one driver-level statement that also writes the
   * `pending` audit events. Returns undefined, having written nothing, for every other case and
   * when the session changed since `read`; `rotate` then handles it under the session lock.
   */
  private async rotateCommon(read: RefreshRead | undefined, facts: RequestFacts, proof: VerifiedProof | undefined, pending: AuditEvent[]): Promise<RotationOutcome | undefined> {
    if (!read) return undefined;
    const { token, session } = read;
    const now = this.deps.clock.now();
    if (token.rotatedAt !== null || this.sessionFailure(session, token.expiresAt, now)) return undefined;
    const lifetime = this.rotationLifetime(session, now);
    if (lifetime.absoluteExpiresAt <= now) return undefined;
    // A key-bound session needs a proof from its own key; `rotate` reports the mismatch.
    if (session.device.jkt !== null && proof?.jkt !== session.device.jkt) return undefined;

    const next = await this.nextPair(session, token.id, now, lifetime);
    const ids = { userId: session.userId, sessionId: session.id, deviceId: session.deviceId, ip: facts.ip };
    const audit = [...pending, { type: 'token.rotated', ...ids, data: { parentTokenId: token.id } }].map((event) => this.deps.audit.row(event));
    const write: RotationWrite = {
      sessionVersion: read.sessionVersion,
      successorId: next.successorId,
      successorHash: hashRefreshToken(next.pair.refreshToken),
      predecessorId: token.id,
      grandparentId: token.parentId,
      sessionId: session.id,
      now,
      idleExpiresAt: next.idleExpiresAt,
      absoluteExpiresAt: next.absoluteExpiresAt,
      graceResult: next.graceResult,
      audit,
    };
    if (!(await this.deps.refreshSql.write(write))) return undefined;

    this.deps.audit.written(audit);
    return { kind: 'rotated', pair: next.pair, sessionId: session.id, userId: session.userId, deviceId: session.deviceId };
  }

  private async rotate(tx: Transaction, tokenHash: Uint8Array<ArrayBuffer>, facts: RequestFacts, proof: VerifiedProof | undefined): Promise<RotationOutcome> {
    const now = this.deps.clock.now();
    const found = await tx.refreshToken.findUnique({ where: { tokenHash }, select: { sessionId: true } });
    if (!found) {
      await this.deps.audit.record({ type: 'refresh.failed', ip: facts.ip, reason: 'unknown_token' }, tx);
      return { kind: 'failed', code: 'REFRESH_TOKEN_INVALID', reason: 'unknown_token' };
    }

    // The session row lock serialises every rotation of this family.
    await tx.$queryRaw`SELECT id FROM sessions WHERE id = ${found.sessionId}::uuid FOR UPDATE`;
    const session = await tx.session.findUniqueOrThrow({ where: { id: found.sessionId }, include: { device: { select: deviceTrustSelect } } });
    const token = await tx.refreshToken.findUniqueOrThrow({ where: { tokenHash } });
    const ids = { userId: session.userId, sessionId: session.id, deviceId: session.deviceId, ip: facts.ip };

    const failure = this.sessionFailure(session, token.expiresAt, now);
    if (failure) {
      await this.deps.audit.record({ type: 'refresh.failed', ...ids, reason: failure.reason }, tx);
      return { kind: 'failed', ...failure, sessionId: session.id, userId: session.userId };
    }
    const lifetime = this.rotationLifetime(session, now);
    if (lifetime.absoluteExpiresAt <= now) {
      await this.deps.audit.record({ type: 'refresh.failed', ...ids, reason: 'absolute_lifetime_passed_for_device_trust' }, tx);
      return { kind: 'failed', code: 'SESSION_EXPIRED', reason: 'absolute_lifetime_passed_for_device_trust', sessionId: session.id, userId: session.userId };
    }
    // RFC 9449 §5: a refresh of a key-bound session needs a proof from the device key it is bound to.
    const keyBound = session.device.jkt !== null;
    const keyProven = keyBound && proof?.jkt === session.device.jkt;

    if (token.rotatedAt === null) {
      if (keyBound && !keyProven) return this.deviceMismatch(tx, session.id, ids, proof, now);
      const pair = await this.rotateCurrent(tx, session, token.id, now, lifetime);
      await this.deps.audit.record({ type: 'token.rotated', ...ids, data: { parentTokenId: token.id } }, tx);
      return { kind: 'rotated', pair, sessionId: session.id, userId: session.userId, deviceId: session.deviceId };
    }

    const graceReplay = keyBound && !keyProven ? undefined : await this.graceReplay(tx, token, now);
    if (graceReplay) {
      await this.deps.audit.record({ type: 'refresh.grace_replayed', ...ids, data: { tokenId: token.id } }, tx);
      return { kind: 'grace', pair: graceReplay, sessionId: session.id };
    }
    if (keyProven) return this.recoverLostResponse(tx, session, token.id, ids, now, lifetime);

    await tx.session.update({ where: { id: session.id }, data: { revokedAt: now, revokeReason: 'refresh_token_reused' } });
    await tx.refreshToken.updateMany({ where: { sessionId: session.id, graceResult: { not: null } }, data: { graceResult: null } });
    await this.deps.audit.record(
      { type: 'refresh.reuse_detected', ...ids, reason: 'rotated_token_presented_again', data: { tokenId: token.id, rotatedAt: token.rotatedAt.toISOString() } },
      tx,
    );
    await this.deps.audit.record({ type: 'session.revoked', ...ids, reason: 'refresh_token_reused' }, tx);
    return { kind: 'reused', sessionId: session.id, userId: session.userId, deviceId: session.deviceId };
  }

  private sessionFailure(
    session: { revokedAt: Date | null; idleExpiresAt: Date; absoluteExpiresAt: Date },
    tokenExpiresAt: Date,
    now: Date,
  ): { code: 'SESSION_REVOKED' | 'SESSION_EXPIRED' | 'REFRESH_TOKEN_INVALID'; reason: string } | undefined {
    if (session.revokedAt) return { code: 'SESSION_REVOKED', reason: 'session_revoked' };
    if (session.absoluteExpiresAt <= now) return { code: 'SESSION_EXPIRED', reason: 'absolute_lifetime_passed' };
    if (session.idleExpiresAt <= now) return { code: 'SESSION_EXPIRED', reason: 'idle_lifetime_passed' };
    if (tokenExpiresAt <= now) return { code: 'REFRESH_TOKEN_INVALID', reason: 'token_expired' };
    return undefined;
  }

  private async rotateCurrent(tx: Transaction, session: RotatingSession, tokenId: string, now: Date, lifetime?: RotationLifetime): Promise<TokenPair> {
    const next = await this.nextPair(session, tokenId, now, lifetime);

    await tx.refreshToken.create({
      data: { id: next.successorId, sessionId: session.id, tokenHash: hashRefreshToken(next.pair.refreshToken), parentId: tokenId, createdAt: now, expiresAt: next.idleExpiresAt },
    });
    // Only the immediate predecessor keeps a grace result; older ones lose theirs now.
    await tx.refreshToken.updateMany({ where: { sessionId: session.id, graceResult: { not: null } }, data: { graceResult: null } });
    await tx.refreshToken.update({ where: { id: tokenId }, data: { rotatedAt: now, successorId: next.successorId, graceResult: next.graceResult } });
    await tx.session.update({ where: { id: session.id }, data: { lastUsedAt: now, idleExpiresAt: next.idleExpiresAt, absoluteExpiresAt: next.absoluteExpiresAt } });
    return next.pair;
  }

  /**
   * Issues the successor of `tokenId`: a new refresh token, an access token with the session's
   * claims, the new lifetimes, and the pair sealed as the predecessor's grace result.
   */
  private async nextPair(session: RotatingSession, tokenId: string, now: Date, lifetime?: RotationLifetime) {
    const refreshToken = randomToken();
    const successorId = randomUUID();
    const absoluteExpiresAt = lifetime?.absoluteExpiresAt ?? session.absoluteExpiresAt;
    const idleExpiresAt = this.idleExpiry(now, absoluteExpiresAt, lifetime?.idleSeconds);
    // auth_time and acr come from the session: a refresh never makes authentication fresher.
    const access = await this.deps.access.issue({
      userId: session.userId,
      sessionId: session.id,
      deviceId: session.deviceId,
      scopes: session.scopes,
      acr: session.acr,
      amr: session.amr,
      authTime: session.authTime,
      jkt: session.device.jkt,
    });
    const pair: TokenPair = {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt,
      refreshToken,
      refreshTokenExpiresAt: idleExpiresAt,
      tokenType: session.device.jkt ? 'DPoP' : 'Bearer',
    };
    const graceResult = new Uint8Array(seal(this.deps.config.masterKey, serializePair(pair), graceContext(tokenId)));
    return { pair, successorId, idleExpiresAt, absoluteExpiresAt, graceResult };
  }

  /**
   * Records a step-up on the session (fresh auth_time, the acr and amr `authenticate` returns for the
   * session's current ones) and rotates its refresh token, so later refreshes keep the new
   * authentication. The token the app held becomes the predecessor: inside the grace window it
   * returns this pair, later it counts as reuse, exactly as after a refresh.
   */
  async reauthenticate(sessionId: string, authenticate: (current: { acr: string; amr: string[] }) => { acr: string; amr: string[] }, facts: RequestFacts): Promise<TokenPair> {
    type Outcome =
      | { kind: 'failed'; code: 'REFRESH_TOKEN_INVALID' | 'SESSION_EXPIRED' | 'SESSION_REVOKED' }
      | { kind: 'reauthenticated'; pair: TokenPair; userId: string; deviceId: string; acr: string; amr: string[] };
    const outcome = await this.deps.db.$transaction(
      async (tx): Promise<Outcome> => {
        const now = this.deps.clock.now();
        await tx.$queryRaw`SELECT id FROM sessions WHERE id = ${sessionId}::uuid FOR UPDATE`;
        const session = await tx.session.findUniqueOrThrow({ where: { id: sessionId } });
        const current = await tx.refreshToken.findFirst({ where: { sessionId, rotatedAt: null }, orderBy: { createdAt: 'desc' } });
        const failure = this.sessionFailure(session, current?.expiresAt ?? now, now);
        if (failure) return { kind: 'failed', code: failure.code };
        if (!current) return { kind: 'failed', code: 'REFRESH_TOKEN_INVALID' };

        const next = authenticate({ acr: session.acr, amr: session.amr });
        const updated = await tx.session.update({ where: { id: sessionId }, data: { acr: next.acr, amr: next.amr, authTime: now }, include: { device: { select: deviceTrustSelect } } });
        // A step-up rotation keeps the lifetimes the device's trust gives, like a refresh.
        const pair = await this.rotateCurrent(tx, updated, current.id, now, this.rotationLifetime(updated, now));
        await this.deps.audit.record({ type: 'token.rotated', userId: session.userId, sessionId, deviceId: session.deviceId, ip: facts.ip, reason: 'step_up', data: { parentTokenId: current.id } }, tx);
        return { kind: 'reauthenticated', pair, userId: session.userId, deviceId: session.deviceId, acr: next.acr, amr: next.amr };
      },
      { maxWait: 10_000, timeout: 15_000 },
    );
    if (outcome.kind === 'failed') throw new TollgateError(outcome.code);
    // A second factor returns the session's risk level to LOW and restores a suspended device.
    if (outcome.acr === 'aal2') await this.deps.risk.secondFactorVerified({ userId: outcome.userId, sessionId, deviceId: outcome.deviceId, method: outcome.amr.join(',') });
    return outcome.pair;
  }

  /** Lifetimes for a new session on `deviceId`, by the device's trust. */
  private async startLifetime(db: Transaction | Db, deviceId: string, now: Date): Promise<SessionLifetime> {
    const fallback = { idleSeconds: this.deps.config.idleSeconds, absoluteSeconds: this.deps.config.absoluteSeconds };
    if (!this.deps.trustPolicy) return fallback;
    const device = await db.device.findUnique({ where: { id: deviceId }, select: deviceTrustSelect });
    return device ? this.deps.trustPolicy.lifetimeOf(device, now) : fallback;
  }

  /**
   * Lifetimes by the device's trust now. The absolute end counts from the session's start, so a
   * device that gained trust keeps its session longer and one that lost trust may find it ended.
   */
  private rotationLifetime(session: { createdAt: Date; absoluteExpiresAt: Date; device: DeviceTrustRow }, now: Date): RotationLifetime {
    if (!this.deps.trustPolicy) return { idleSeconds: this.deps.config.idleSeconds, absoluteExpiresAt: session.absoluteExpiresAt };
    const lifetime = this.deps.trustPolicy.lifetimeOf(session.device, now);
    return { idleSeconds: lifetime.idleSeconds, absoluteExpiresAt: new Date(session.createdAt.getTime() + lifetime.absoluteSeconds * 1000) };
  }

  /**
   * Verifies the refresh request's DPoP proof when it carries one (htm POST, htu the GraphQL URL, no
   * ath). A present but invalid proof refuses the refresh before any token is looked up.
   */
  private async refreshProof(facts: RequestFacts): Promise<VerifiedProof | undefined> {
    if (!this.deps.dpop || facts.http?.dpop === undefined) return undefined;
    try {
      return await this.deps.dpop.verify(facts.http);
    } catch (error) {
      const reason = error instanceof TollgateError ? error.extensions.reason : undefined;
      if (typeof reason === 'string') await this.deps.audit.record({ type: 'refresh.failed', ip: facts.ip, reason: `dpop_${reason}` });
      throw error;
    }
  }

  /**
   * A key-bound session's refresh came without a proof from its device key: nothing is issued. The
   * session is revoked only when configured: the device that holds the key can still refresh, and
   * whoever sent this request cannot without the key.
   */
  private async deviceMismatch(tx: Transaction, sessionId: string, ids: { userId: string; sessionId: string; deviceId: string; ip: string | undefined }, proof: VerifiedProof | undefined, now: Date): Promise<RotationOutcome> {
    const revoke = this.deps.config.refreshMismatchRevokes === true;
    if (revoke) {
      await tx.session.update({ where: { id: sessionId }, data: { revokedAt: now, revokeReason: 'refresh_device_mismatch' } });
      await tx.refreshToken.updateMany({ where: { sessionId, graceResult: { not: null } }, data: { graceResult: null } });
    }
    await this.deps.audit.record({ type: 'refresh.device_mismatch', ...ids, reason: proof ? 'proof_from_other_key' : 'proof_missing', data: { sessionRevoked: revoke } }, tx);
    if (revoke) await this.deps.audit.record({ type: 'session.revoked', ...ids, reason: 'refresh_device_mismatch' }, tx);
    return { kind: 'mismatch', revoked: revoke, sessionId };
  }

  /**
   * A rotated refresh token came back after the grace window with a proof from the session's own
   * device key: the response carrying its successor was lost, and nobody else holds the key. The
   * family moves forward instead of being revoked: every unused successor stops working, and a new
   * one is issued to the proven key.
   */
  private async recoverLostResponse(
    tx: Transaction,
    session: RotatingSession,
    tokenId: string,
    ids: { userId: string; sessionId: string; deviceId: string; ip: string | undefined },
    now: Date,
    lifetime: RotationLifetime,
  ): Promise<RotationOutcome> {
    const replaced = await tx.refreshToken.updateMany({ where: { sessionId: session.id, rotatedAt: null }, data: { rotatedAt: now, expiresAt: now } });
    const pair = await this.rotateCurrent(tx, session, tokenId, now, lifetime);
    await this.deps.audit.record({ type: 'refresh.lost_response_recovered', ...ids, data: { tokenId, replacedTokens: replaced.count } }, tx);
    return { kind: 'rotated', pair, sessionId: session.id, userId: session.userId, deviceId: session.deviceId };
  }

  /** Returns the successor pair when `token` is the immediate predecessor and the grace window is still open. */
  private async graceReplay(tx: Transaction, token: { id: string; rotatedAt: Date | null; successorId: string | null; graceResult: Uint8Array | null }, now: Date): Promise<TokenPair | undefined> {
    if (!token.rotatedAt || !token.successorId || !token.graceResult) return undefined;
    const ageSeconds = (now.getTime() - token.rotatedAt.getTime()) / 1000;
    if (ageSeconds > this.deps.config.refreshGraceSeconds) return undefined;

    const successor = await tx.refreshToken.findUnique({ where: { id: token.successorId }, select: { rotatedAt: true } });
    if (!successor || successor.rotatedAt !== null) return undefined;
    return deserializePair(open(this.deps.config.masterKey, token.graceResult, graceContext(token.id)).toString('utf8'));
  }

  /**
   * Revokes sessions of `userId` (all when `sessionIds` is omitted), except `keepSessionId`. Returns
   * how many sessions this call revoked.
   */
  async revoke(options: { userId: string; sessionIds?: string[]; keepSessionId?: string; reason: string; facts: RequestFacts; actorSessionId?: string }): Promise<number> {
    const now = this.deps.clock.now();
    const revoked = await this.deps.db.$transaction(async (tx) => {
      const targets = await tx.session.findMany({
        where: {
          userId: options.userId,
          revokedAt: null,
          ...(options.sessionIds ? { id: { in: options.sessionIds } } : {}),
          ...(options.keepSessionId ? { NOT: { id: options.keepSessionId } } : {}),
        },
        select: { id: true, deviceId: true },
      });
      if (targets.length === 0) return [];
      await tx.session.updateMany({ where: { id: { in: targets.map((target) => target.id) }, revokedAt: null }, data: { revokedAt: now, revokeReason: options.reason } });
      await tx.refreshToken.updateMany({ where: { sessionId: { in: targets.map((target) => target.id) }, graceResult: { not: null } }, data: { graceResult: null } });
      for (const target of targets) {
        await this.deps.audit.record(
          { type: 'session.revoked', userId: options.userId, sessionId: target.id, deviceId: target.deviceId, ip: options.facts.ip, reason: options.reason, data: { actorSessionId: options.actorSessionId } },
          tx,
        );
      }
      return targets.map((target) => target.id);
    });

    if (revoked.length > 0) await this.broadcastRevocation(revoked);
    return revoked.length;
  }

  /**
   * Sends committed revocations to Redis and the other instances. The database already contains them,
   * so a failure here is reported as retryable, because revoking again is harmless.
   */
  private async broadcastRevocation(sessionIds: string[]): Promise<void> {
    try {
      await this.deps.revocation.publish({ sessions: sessionIds });
    } catch (error) {
      this.deps.logger.error({ err: error, sessionIds }, 'revocation committed to PostgreSQL but not broadcast through Redis');
      throw new TollgateError('SERVICE_UNAVAILABLE', 'The revocation was recorded but could not be broadcast: retry the request.', { retryAfterSeconds: 1 });
    }
  }

  async list(userId: string) {
    return this.deps.db.session.findMany({
      where: { userId, revokedAt: null, idleExpiresAt: { gt: this.deps.clock.now() } },
      include: { device: true },
      orderBy: { lastUsedAt: 'desc' },
    });
  }
}

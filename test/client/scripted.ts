import type { VirtualTime } from '../../sim/virtual-time.ts';
import { overwrite, type FetchLike, type MemoryTokenStorage } from '../../src/client/index.ts';

/** One request as the scripted server received it. */
export interface Received {
  operationName: string | undefined;
  variables: Record<string, unknown>;
  authorization: string | null;
  dpop: string | null;
  at: number;
}

export type Reply = { status: number; body?: unknown; headers?: Record<string, string> } | 'network-error';

/**
 * A stand-in for the gateway that responds from a script, for client behaviour the real gateway does
 * not produce on demand (429, 503, dropped connections, DEVICE_SUSPENDED). Without a scripted reply
 * it rotates refresh tokens like the gateway: the current one gets a new pair, any other is reuse.
 */
export class ScriptedServer {
  readonly received: Received[] = [];
  private readonly replies: Array<{ operationName: string | undefined; reply: Reply }> = [];
  private generation = 0;
  currentRefreshToken = 'refresh-0';
  currentAccessToken = 'access-0';
  tokenType: 'Bearer' | 'DPoP' = 'Bearer';

  constructor(
    private readonly time: VirtualTime,
    private readonly ttlMs = 300_000,
  ) {}

  /** Queues a reply for the next request with this operation name (undefined: an app request). */
  script(operationName: string | undefined, ...replies: Reply[]): void {
    for (const reply of replies) this.replies.push({ operationName, reply });
  }

  /** Seeds `storage` with the server's current pair, as a sign-in on a device `clockOffsetMs` off would. */
  async signIn(storage: MemoryTokenStorage, clockOffsetMs = 0): Promise<void> {
    const now = this.time.now();
    await overwrite(storage, 'tokens', {
      accessToken: this.currentAccessToken,
      accessTokenExpiresAt: now + this.ttlMs,
      refreshToken: this.currentRefreshToken,
      refreshTokenExpiresAt: now + 30 * 86_400_000,
      tokenType: this.tokenType,
      receivedAt: now,
      clockOffsetMs: -clockOffsetMs,
    });
  }

  requests(operationName: string | undefined): Received[] {
    return this.received.filter((request) => request.operationName === operationName);
  }

  readonly fetch: FetchLike = async (input, init) => {
    const request = new Request(input, init);
    const text = request.body === null ? '' : await request.text();
    const body = (text ? JSON.parse(text) : {}) as { operationName?: string; variables?: Record<string, unknown> };
    const received: Received = {
      operationName: body.operationName,
      variables: body.variables ?? {},
      authorization: request.headers.get('authorization'),
      dpop: request.headers.get('dpop'),
      at: this.time.now(),
    };
    this.received.push(received);

    const index = this.replies.findIndex((entry) => entry.operationName === received.operationName);
    const reply = index >= 0 ? (this.replies.splice(index, 1)[0] as { reply: Reply }).reply : this.defaultReply(received);
    if (reply === 'network-error') throw new TypeError('fetch failed');
    return new Response(JSON.stringify(reply.body ?? {}), {
      status: reply.status,
      headers: { 'content-type': 'application/json', date: new Date(this.time.now()).toUTCString(), ...reply.headers },
    });
  };

  private defaultReply(request: Received): Reply {
    if (request.operationName === 'TollgateRefreshSession') {
      if (request.variables.refreshToken !== this.currentRefreshToken) return refusal('REFRESH_TOKEN_REUSED', 401);
      return { status: 200, body: { data: { refreshSession: this.rotate() } } };
    }
    if (request.operationName === 'TollgateStepUp') return { status: 200, body: { data: { stepUp: this.rotate() } } };
    if (request.authorization?.split(' ')[1] !== this.currentAccessToken) return refusal('TOKEN_EXPIRED', 401);
    return { status: 200, body: { data: { me: { id: 'user-1' } } } };
  }

  /** Issues the next pair. */
  rotate(): Record<string, string> {
    this.generation += 1;
    this.currentAccessToken = `access-${this.generation}`;
    this.currentRefreshToken = `refresh-${this.generation}`;
    const now = this.time.now();
    return {
      accessToken: this.currentAccessToken,
      accessTokenExpiresAt: new Date(now + this.ttlMs).toISOString(),
      refreshToken: this.currentRefreshToken,
      refreshTokenExpiresAt: new Date(now + 30 * 86_400_000).toISOString(),
      tokenType: this.tokenType,
    };
  }
}

/** Builds a whole-operation refusal as the gateway sends it. */
export function refusal(code: string, status: number, extensions: Record<string, unknown> = {}, headers: Record<string, string> = {}): Reply {
  return { status, body: { errors: [{ message: code, extensions: { ...extensions, code } }] }, headers };
}

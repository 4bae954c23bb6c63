import type { FetchLike } from '../src/client/index.ts';
import type { FaultRates } from './config.ts';
import type { FleetMetrics } from './metrics.ts';
import type { Random } from './random.ts';
import type { SimulationTime } from './time.ts';

export type KillStage = 'before-send' | 'after-commit' | 'after-store';
const killStages: readonly KillStage[] = ['before-send', 'after-commit', 'after-store'];

/** The device a link belongs to, as far as the network needs to know it. */
export interface LinkOwner {
  /** Whether launch `launch` of the app is still running; a killed launch's requests never finish. */
  isRunning(launch: number): boolean;
  kill(stage: KillStage): void;
  isOffline(): boolean;
  /** Client address the gateway reads from X-Forwarded-For, sent as by a trusted proxy. */
  readonly address: string;
}

export interface LinkDeps {
  time: SimulationTime;
  /** The real network to the gateway. */
  fetch: FetchLike;
  faults: FaultRates;
  faultsActive(): boolean;
  metrics: FleetMetrics;
}

/**
 * One device's network: forwards requests to the gateway and injects the configured faults. Real
 * work (the HTTP exchange, reading bodies) is tracked, so virtual time waits for it. Waiting for a
 * response that will never come is not tracked, so the client's timeout fires on virtual time.
 */
export class FaultyLink {
  constructor(
    private readonly deps: LinkDeps,
    private readonly owner: LinkOwner,
    private readonly random: Random,
  ) {}

  /** Returns the fetch of one launch of the app, or of a process the simulator never kills (`launch` undefined). */
  fetchFor(launch: number | undefined): FetchLike {
    return (input, init) => this.send(new Request(input, init), launch, init?.signal ?? undefined);
  }

  private async send(request: Request, launch: number | undefined, signal: AbortSignal | undefined): Promise<Response> {
    if (launch !== undefined && !this.owner.isRunning(launch)) return never();
    const operationName = await this.deps.time.track(() => operationNameOf(request));
    if (this.owner.isOffline()) throw new TypeError('fetch failed: the network is down');

    const faulty = this.deps.faultsActive();
    const refresh = operationName === 'TollgateRefreshSession';
    const faults = this.deps.faults;

    const kill = faulty && refresh && launch !== undefined && this.random.chance(faults.killDuringRefresh) ? this.random.pick(killStages) : undefined;
    if (kill === 'before-send') {
      this.owner.kill(kill);
      return never();
    }
    if (kill === 'after-store') this.owner.kill(kill);

    const timeout = faulty && this.random.chance(faults.timeout) ? this.random.pick(['request-lost', 'response-lost'] as const) : undefined;
    if (timeout) this.deps.metrics.fault(`timeout:${timeout}`);
    if (timeout === 'request-lost') return abortedBy(signal);

    const duplicate = faulty && this.random.chance(faults.duplicate);
    if (duplicate) this.deps.metrics.fault('duplicate');
    const response = duplicate ? await this.sendTwice(request, refresh) : await this.exchange(request, refresh);

    if (launch !== undefined && !this.owner.isRunning(launch)) return never();
    if (kill === 'after-commit') {
      this.owner.kill(kill);
      return never();
    }
    if (timeout === 'response-lost') return abortedBy(signal);
    if (faulty && refresh && this.random.chance(faults.dropAfterCommit) && (await this.deps.time.track(() => carriesTokenPair(response)))) {
      this.deps.metrics.fault('drop-after-commit');
      throw new TypeError('fetch failed: the connection closed before the response arrived');
    }
    if (this.owner.isOffline()) throw new TypeError('fetch failed: the network went down during the request');
    return response;
  }

  private exchange(request: Request, refresh: boolean): Promise<Response> {
    request.headers.set('x-forwarded-for', this.owner.address);
    return this.deps.time.track(async () => {
      const started = performance.now();
      const response = await this.deps.fetch(request);
      const body = await response.arrayBuffer();
      const copy = new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
      if (refresh) this.deps.metrics.refreshAnswered(await carriesTokenPair(copy), performance.now() - started, this.deps.time.now());
      return copy;
    });
  }

  /** Delivers the request twice at once, proof and all, and returns one of the responses at random. */
  private async sendTwice(request: Request, refresh: boolean): Promise<Response> {
    const [first, second] = await Promise.all([this.exchange(request.clone(), refresh), this.exchange(request, refresh)]);
    return this.random.chance(0.5) ? first : second;
  }
}

async function operationNameOf(request: Request): Promise<string | undefined> {
  if (request.body === null) return undefined;
  try {
    const body = (await request.clone().json()) as { operationName?: unknown };
    return typeof body.operationName === 'string' ? body.operationName : undefined;
  } catch {
    return undefined;
  }
}

async function carriesTokenPair(response: Response): Promise<boolean> {
  if (!response.ok) return false;
  try {
    const body = (await response.clone().json()) as { data?: { refreshSession?: unknown } };
    return typeof body.data?.refreshSession === 'object' && body.data.refreshSession !== null;
  } catch {
    return false;
  }
}

/** Returns a response promise that never settles, for a request whose process died. */
function never(): Promise<Response> {
  return new Promise(() => undefined);
}

/** Returns a response promise that rejects when `signal` aborts, and never settles without one. */
function abortedBy(signal: AbortSignal | undefined): Promise<Response> {
  return new Promise((_resolve, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

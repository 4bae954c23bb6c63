import { MemoryTokenStorage, TollgateClient, type ClientEvent, type CompareAndSetResult, type CryptoProvider, type FetchLike, type StorageKey, type StorageValues, type Timers, type TokenStorage, type Versioned } from '../src/client/index.ts';
import type { FleetConfig } from './config.ts';
import type { FleetMetrics } from './metrics.ts';
import { FaultyLink, type KillStage, type LinkOwner } from './network.ts';
import type { Random } from './random.ts';
import type { SimulationTime } from './time.ts';

/** Settings and services every device of a fleet shares. */
export interface FleetContext {
  config: FleetConfig;
  time: SimulationTime;
  url: string;
  /** The real network to the gateway, untracked. */
  fetch: FetchLike;
  crypto: CryptoProvider;
  metrics: FleetMetrics;
  faultsActive(): boolean;
}

export const meQuery = JSON.stringify({ query: '{ me { id } }' });

/**
 * One phone: an app (killed and relaunched from its storage by the fault injector), sometimes an
 * app extension sharing the storage, a clock that may be hours off, and a network that fails.
 */
export class SimDevice implements LinkOwner {
  readonly storage = new MemoryTokenStorage();
  readonly address: string;
  readonly clockOffsetMs: number;
  signedOut: { reason: string; at: number } | undefined;
  stolen = false;
  enrolled = false;
  private launch = 0;
  private running = false;
  private app: TollgateClient | undefined;
  private offlineUntil = 0;
  private killAfterStore = false;
  private readonly link: FaultyLink;
  private readonly hasExtension: boolean;

  constructor(
    readonly index: number,
    private readonly context: FleetContext,
    private readonly random: Random,
  ) {
    const faults = context.config.faults;
    this.address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
    this.clockOffsetMs = random.chance(faults.skewedClocks) ? random.uniform(-1, 1) * faults.maxClockOffsetHours * 3600_000 : 0;
    this.hasExtension = random.chance(context.config.extensionDevices);
    this.link = new FaultyLink({ ...context, faults }, this, random);
  }

  /** Signs up a new account from this device and starts using it. */
  async signUp(): Promise<boolean> {
    this.running = true;
    const client = this.startApp();
    try {
      const result = await client.signUp({ email: `fleet-${this.index}-${this.random.next().toString(36).slice(2)}@example.com`, password: 'fleet device password', device: { platform: this.index % 2 === 0 ? 'IOS' : 'ANDROID', model: 'simulated' } });
      if (result.kind !== 'signed_in') throw new Error(`sign-up returned a ${result.kind}`);
    } catch {
      this.context.metrics.signUpFailures += 1;
      this.running = false;
      client.close();
      return false;
    }
    this.enrolled = true;
    this.scheduleRequest(this.launch);
    if (this.hasExtension) this.scheduleExtension();
    return true;
  }

  isRunning(launch: number): boolean {
    return this.running && launch === this.launch;
  }

  isOffline(): boolean {
    return this.context.time.now() < this.offlineUntil;
  }

  goOffline(durationMs: number): void {
    this.context.metrics.fault('outage');
    this.offlineUntil = Math.max(this.offlineUntil, this.context.time.now() + durationMs);
  }

  /**
   * Kills the app at `stage`; a later launch continues from whatever its storage contains. At
   * `after-store` the kill is armed and happens right after the launch's next write of tokens.
   */
  kill(stage: KillStage): void {
    if (stage === 'after-store') {
      this.killAfterStore = true;
      return;
    }
    this.terminate(stage);
  }

  private terminate(stage: KillStage): void {
    this.context.metrics.fault(`kill:${stage}`);
    this.killAfterStore = false;
    this.running = false;
    this.launch += 1;
    this.app = undefined;

    const [min, max] = this.context.config.faults.relaunchDelaySeconds;
    const delay = this.context.faultsActive() ? this.random.uniform(min, max) * 1000 : 0;
    this.context.time.timers.setTimeout(() => this.relaunch(), delay);
  }

  /** Ends this device's outage and relaunches a killed app, for the fault-free end of a run. */
  endFaults(): void {
    this.offlineUntil = 0;
    this.killAfterStore = false;
    if (!this.running && !this.signedOut) this.relaunch();
  }

  /** Makes one request with the app; returns true when the response carried data within a minute. */
  async check(): Promise<boolean> {
    if (this.signedOut || !this.app) return false;
    let timer: unknown;
    const timeout = new Promise<boolean>((resolve) => {
      timer = this.context.time.timers.setTimeout(() => resolve(false), 60_000);
    });
    const served = await Promise.race([this.request(this.app), timeout]);
    this.context.time.timers.clearTimeout(timer);
    return served;
  }

  /** Copies the stored tokens, as malware or a backup leak would; the device key cannot be copied. */
  async copyTokens(): Promise<StorageValues['tokens'] | undefined> {
    const stored = await this.storage.read('tokens');
    if (!stored) return undefined;
    this.stolen = true;
    return stored.value;
  }

  close(): void {
    this.running = false;
    this.app?.close();
  }

  private relaunch(): void {
    if (this.running || this.signedOut) return;
    this.running = true;
    const client = this.startApp();
    void client.start();
    this.scheduleRequest(this.launch);
  }

  private startApp(): TollgateClient {
    const launch = this.launch;
    this.app = this.client({ processName: 'app', launch, storage: new LaunchStorage(this.storage, this, launch), timers: launchTimers(this.context.time.timers, this, launch) });
    return this.app;
  }

  private client(options: { processName: string; launch: number | undefined; storage: TokenStorage; timers: Timers; backgroundRefresh?: boolean }): TollgateClient {
    return new TollgateClient({
      url: this.context.url,
      storage: options.storage,
      processName: options.processName,
      fetch: this.link.fetchFor(options.launch),
      clock: this.context.time.deviceClock(this.clockOffsetMs),
      timers: options.timers,
      random: this.random.next,
      crypto: this.context.crypto,
      backgroundRefresh: options.backgroundRefresh ?? true,
      bindDeviceKey: !this.context.config.bearerSessions,
      onEvent: (event) => this.observe(event),
    });
  }

  private observe(event: ClientEvent): void {
    if (event.type === 'retry') this.context.metrics.retry(event.cause);
    if (event.type !== 'signed_out' || this.signedOut) return;
    this.signedOut = { reason: event.reason, at: this.context.time.now() };
    this.context.metrics.signOuts.push({ device: this.index, reason: event.reason, at: this.context.time.now(), stolen: this.stolen });
  }

  private scheduleRequest(launch: number): void {
    const delay = this.random.exponential(this.context.config.requestIntervalSeconds) * 1000;
    this.context.time.timers.setTimeout(() => {
      if (!this.isRunning(launch) || this.signedOut || !this.app) return;
      void this.request(this.app).then(() => this.scheduleRequest(launch));
    }, delay);
  }

  private async request(client: TollgateClient): Promise<boolean> {
    try {
      const response = await client.fetch(this.context.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: meQuery });
      const body = (await response.json()) as { data?: { me?: unknown } };
      const served = response.status === 200 && Boolean(body.data?.me);
      if (served) this.context.metrics.requestsServed += 1;
      else this.context.metrics.requestsFailed += 1;
      return served;
    } catch {
      this.context.metrics.requestsFailed += 1;
      return false;
    }
  }

  /** Launches the extension now and then: it reads the shared store, makes one request and exits. */
  private scheduleExtension(): void {
    const delay = this.random.exponential(this.context.config.extensionIntervalSeconds) * 1000;
    this.context.time.timers.setTimeout(() => {
      if (this.signedOut || !this.context.faultsActive()) return;
      const extension = this.client({ processName: 'share-extension', launch: undefined, storage: this.storage, timers: this.context.time.timers, backgroundRefresh: false });
      void this.request(extension).finally(() => {
        extension.close();
        this.scheduleExtension();
      });
    }, delay);
  }

  /** Ends the launch if a kill was armed for its next write of tokens; returns whether it did. */
  killIfArmedAfterStore(): boolean {
    if (!this.killAfterStore) return false;
    this.terminate('after-store');
    return true;
  }
}

/** The app's view of the device storage: once its launch is killed, every call hangs. */
class LaunchStorage implements TokenStorage {
  constructor(
    private readonly storage: MemoryTokenStorage,
    private readonly device: SimDevice,
    private readonly launch: number,
  ) {}

  async read<K extends StorageKey>(key: K): Promise<Versioned<StorageValues[K]> | null> {
    if (!this.device.isRunning(this.launch)) return never();
    return this.storage.read(key);
  }

  async compareAndSet<K extends StorageKey>(key: K, expectedVersion: string | null, value: StorageValues[K] | null): Promise<CompareAndSetResult> {
    if (!this.device.isRunning(this.launch)) return never();
    const result = await this.storage.compareAndSet(key, expectedVersion, value);
    if (key === 'tokens' && result.written && this.device.killIfArmedAfterStore()) return never();
    return result;
  }
}

/** Timers of one launch: a killed launch's timers never fire. */
function launchTimers(timers: Timers, device: SimDevice, launch: number): Timers {
  return {
    setTimeout: (callback, delayMs) => timers.setTimeout(() => device.isRunning(launch) && callback(), delayMs),
    clearTimeout: (handle) => timers.clearTimeout(handle),
  };
}

function never<T>(): Promise<T> {
  return new Promise(() => undefined);
}

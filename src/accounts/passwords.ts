import { hash, verify } from '@node-rs/argon2';

// `Algorithm.Argon2id` of @node-rs/argon2, a const enum that isolated modules cannot read.
const argon2id = 2;

export interface Argon2Settings {
  /** Memory in KiB; OWASP's argon2id minimum is 19,456 KiB with 2 iterations. */
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/**
 * argon2id hashing. `verifyOrDummy` spends the same work whether or not an account exists, so a
 * login for an unknown email takes as long as one with a wrong password.
 */
export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly settings: Argon2Settings) {}

  hash(password: string): Promise<string> {
    return hash(password, { algorithm: argon2id, ...this.settings });
  }

  async verifyOrDummy(storedHash: string | undefined, password: string): Promise<boolean> {
    this.dummyHash ??= this.hash('tollgate-dummy-password-for-timing');
    const target = storedHash ?? (await this.dummyHash);
    let matches = false;
    try {
      matches = await verify(target, password);
    } catch {
      matches = false;
    }
    return storedHash !== undefined && matches;
  }

  /** Computes the dummy hash ahead of the first login, so that login is not slower than the rest. */
  async warmUp(): Promise<void> {
    this.dummyHash ??= this.hash('tollgate-dummy-password-for-timing');
    await this.dummyHash;
  }
}

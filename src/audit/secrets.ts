/**
 * The guard that keeps credentials out of audit events. Audit rows are kept for years and exported
 * to other systems, so a token, password, one-time code or key that reaches one is a leak even when
 * every reader is trusted.
 */

/** Key names, lower-cased with `_` and `-` removed, that always hold a credential. */
const secretKeyNames = new Set(['token', 'code', 'key', 'jwt', 'proof', 'dpop', 'pin', 'otp', 'totp']);

/** Key suffixes, in the same normalised form, that name a credential (`newPassword`, `totp_code`). */
const secretKeySuffixes = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'privatekey',
  'apikey',
  'masterkey',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'bearer',
  'authorization',
  'cookie',
  'credential',
  'credentials',
  'otpcode',
  'totpcode',
  'smscode',
  'recoverycode',
  'backupcode',
  'verificationcode',
  'seed',
];

/** A compact JWS/JWT (three base64url segments, header starting `{"`) or a PEM block. */
const secretValuePatterns = [/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/];

export function isSecretKey(key: string): boolean {
  const normalised = key.toLowerCase().replace(/[_-]/g, '');
  if (secretKeyNames.has(normalised)) return true;
  return secretKeySuffixes.some((suffix) => normalised.endsWith(suffix));
}

export function looksLikeSecretValue(value: string): boolean {
  return secretValuePatterns.some((pattern) => pattern.test(value));
}

/**
 * Returns `data` without members whose key names a credential or whose string value looks like a
 * token or key, at every depth, and the dotted paths it removed.
 */
export function stripSecrets(data: Record<string, unknown>): { data: Record<string, unknown>; removed: string[] } {
  const removed: string[] = [];
  const clean = stripValue(data, '', removed) as Record<string, unknown>;
  return { data: clean, removed };
}

function stripValue(value: unknown, path: string, removed: string[]): unknown {
  if (typeof value === 'string') {
    if (!looksLikeSecretValue(value)) return value;
    removed.push(path);
    return undefined;
  }
  if (Array.isArray(value)) {
    return value.map((item, index) => stripValue(item, `${path}[${index}]`, removed) ?? null);
  }
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;

  const result: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
    const memberPath = path === '' ? key : `${path}.${key}`;
    if (isSecretKey(key)) {
      removed.push(memberPath);
      continue;
    }
    const clean = stripValue(member, memberPath, removed);
    if (clean !== undefined) result[key] = clean;
  }
  return result;
}

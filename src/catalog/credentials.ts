import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether a stored supplier credential can be used, and under which secret key it is sealed. */
export interface CredentialState {
  /**
   * `current`: opens, sealed under the current key. `old-key`: opens, but only with an old key or in
   * the format without a key id (`kaihub credentials reseal` moves it). `unreadable`: no key the hub
   * holds opens it; its deployment cannot be called.
   */
  state: 'current' | 'old-key' | 'unreadable';
  /** The id of the key it is sealed under, when known (the v1 format did not record it). */
  keyId: string | null;
}

/** A short public name for a secret key: the first 8 hex digits of its SHA-256. */
export function secretKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export class CredentialError extends Error {
  override name = 'CredentialError';
  constructor(
    message: string,
    readonly keyId: string | null,
  ) {
    super(message);
  }
}

/**
 * Supplier credentials are sealed with AES-256-GCM under KAIHUB_SECRET_KEY before they reach the
 * database, so a copied database file or backup does not leak them. Format: `v2.<keyId>.<iv>.<tag>.<data>`;
 * the older `v1.<iv>.<tag>.<data>` (no key id) is still read, trying every key held. Old keys
 * (KAIHUB_SECRET_KEYS_OLD) only open; sealing always uses the current key.
 */
export class CredentialBox {
  readonly currentKeyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly current: Buffer,
    old: readonly Buffer[] = [],
  ) {
    for (const key of [current, ...old]) {
      if (key.length !== 32) throw new Error('secret key must be 32 bytes');
      if (!this.keys.has(secretKeyId(key))) this.keys.set(secretKeyId(key), key);
    }
    this.currentKeyId = secretKeyId(current);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [
      'v2',
      this.currentKeyId,
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      data.toString('base64url'),
    ].join('.');
  }

  open(sealed: string): string {
    return this.unseal(sealed).plain;
  }

  inspect(sealed: string): CredentialState {
    try {
      const { keyId } = this.unseal(sealed);
      return {
        state: keyId === this.currentKeyId && sealed.startsWith('v2.') ? 'current' : 'old-key',
        keyId,
      };
    } catch (error) {
      return { state: 'unreadable', keyId: error instanceof CredentialError ? error.keyId : null };
    }
  }

  private unseal(sealed: string): { plain: string; keyId: string } {
    const parts = sealed.split('.');
    if (parts[0] === 'v2' && parts.length === 5) {
      const [, keyId, iv, tag, data] = parts as [string, string, string, string, string];
      const key = this.keys.get(keyId);
      if (!key) throw new CredentialError(`sealed under key ${keyId}, which this hub does not hold`, keyId);
      try {
        return { plain: decrypt(key, iv, tag, data), keyId };
      } catch {
        throw new CredentialError(`key ${keyId} does not open it (damaged)`, keyId);
      }
    }
    if (parts[0] === 'v1' && parts.length === 4) {
      const [, iv, tag, data] = parts as [string, string, string, string];
      for (const [keyId, key] of this.keys) {
        try {
          return { plain: decrypt(key, iv, tag, data), keyId };
        } catch {
          // not this key: try the next
        }
      }
      throw new CredentialError('no key this hub holds opens it', null);
    }
    throw new CredentialError('unknown credential format', null);
  }
}

function decrypt(key: Buffer, iv: string, tag: string, data: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
}

export interface SecretKeys {
  current: Buffer;
  old: Buffer[];
}

/**
 * KAIHUB_SECRET_KEY when given; otherwise `<dataDir>/secret.key`, created (mode 0600) on first start.
 * Losing that file makes sealed supplier keys unreadable, hence the warning to back it up or set it.
 * A hub moved from the generated file to KAIHUB_SECRET_KEY keeps reading what the file sealed: the
 * file's key becomes an old key, like those in KAIHUB_SECRET_KEYS_OLD.
 */
export function loadSecretKeys(
  configured: Buffer | undefined,
  configuredOld: readonly Buffer[],
  dataDir: string,
  parse: (raw: string, name: string) => Buffer,
  warn: (message: string) => void,
): SecretKeys {
  const path = join(dataDir, 'secret.key');
  if (configured) {
    const file = existsSync(path) ? parse(readFileSync(path, 'utf8'), path) : undefined;
    return { current: configured, old: file ? [...configuredOld, file] : [...configuredOld] };
  }
  if (existsSync(path)) return { current: parse(readFileSync(path, 'utf8'), path), old: [...configuredOld] };
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  warn(
    `KAIHUB_SECRET_KEY가 없어 ${path}에 새 키를 만들었습니다. 백업하거나 KAIHUB_SECRET_KEY로 지정하세요. / ` +
      `KAIHUB_SECRET_KEY is not set: generated ${path}. Back it up or set KAIHUB_SECRET_KEY; without it, stored supplier keys cannot be read.`,
  );
  return { current: key, old: [...configuredOld] };
}

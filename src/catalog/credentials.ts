import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Supplier credentials are sealed with AES-256-GCM under KAIHUB_SECRET_KEY before they reach the
 * database, so a copied database file or backup does not leak them. Format: `v1.<iv>.<tag>.<data>`.
 */
export class CredentialBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [
      'v1',
      iv.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
      data.toString('base64url'),
    ].join('.');
  }

  open(sealed: string): string {
    const [version, iv, tag, data] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || data === undefined) throw new Error('unknown credential format');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}

/**
 * KAIHUB_SECRET_KEY when given; otherwise `<dataDir>/secret.key`, created (mode 0600) on first start.
 * Losing that file makes sealed supplier keys unreadable, hence the warning to back it up or set it.
 */
export function loadSecretKey(
  configured: Buffer | undefined,
  dataDir: string,
  parse: (raw: string, name: string) => Buffer,
  warn: (message: string) => void,
): Buffer {
  if (configured) return configured;
  const path = join(dataDir, 'secret.key');
  if (existsSync(path)) return parse(readFileSync(path, 'utf8'), path);
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  warn(
    `KAIHUB_SECRET_KEY가 없어 ${path}에 새 키를 만들었습니다. 백업하거나 KAIHUB_SECRET_KEY로 지정하세요. / ` +
      `KAIHUB_SECRET_KEY is not set: generated ${path}. Back it up or set KAIHUB_SECRET_KEY; without it, stored supplier keys cannot be read.`,
  );
  return key;
}

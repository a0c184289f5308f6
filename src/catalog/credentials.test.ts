import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CredentialBox, secretKeyId } from './credentials.ts';

/** A credential as the hub sealed it before key ids: `v1.<iv>.<tag>.<data>`. */
function sealV1(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), data]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

test('sealed credentials open only with the same key and never contain the plain text', () => {
  const box = new CredentialBox(randomBytes(32));
  const sealed = box.seal('sk-upstream-secret');
  assert.ok(!sealed.includes('sk-upstream-secret'));
  assert.notEqual(box.seal('sk-upstream-secret'), sealed, 'a fresh IV each time');
  assert.equal(box.open(sealed), 'sk-upstream-secret');
  assert.throws(() => new CredentialBox(randomBytes(32)).open(sealed));
  const tampered = `${sealed.slice(0, -2)}AA`;
  assert.throws(() => box.open(tampered));
  assert.equal(box.inspect(tampered).state, 'unreadable');
});

test('a credential names its key; old keys open, only the current one seals', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const before = new CredentialBox(oldKey);
  const sealedOld = before.seal('nv-secret');
  assert.equal(sealedOld.split('.')[1], secretKeyId(oldKey));
  assert.match(secretKeyId(oldKey), /^[0-9a-f]{8}$/);

  const rotated = new CredentialBox(newKey, [oldKey]);
  assert.equal(rotated.open(sealedOld), 'nv-secret');
  assert.deepEqual(rotated.inspect(sealedOld), { state: 'old-key', keyId: secretKeyId(oldKey) });
  const resealed = rotated.seal(rotated.open(sealedOld));
  assert.deepEqual(rotated.inspect(resealed), { state: 'current', keyId: secretKeyId(newKey) });

  const forgotten = new CredentialBox(newKey);
  assert.deepEqual(forgotten.inspect(sealedOld), { state: 'unreadable', keyId: secretKeyId(oldKey) });
  assert.throws(() => forgotten.open(sealedOld), /does not hold/);
});

test('the v1 format (no key id) is still read, under whichever key opens it', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const v1 = sealV1(oldKey, 'upstage-key');
  assert.equal(new CredentialBox(oldKey).open(v1), 'upstage-key');
  assert.deepEqual(new CredentialBox(oldKey).inspect(v1), { state: 'old-key', keyId: secretKeyId(oldKey) });
  assert.equal(new CredentialBox(newKey, [oldKey]).open(v1), 'upstage-key');
  assert.deepEqual(new CredentialBox(newKey).inspect(v1), { state: 'unreadable', keyId: null });
  assert.equal(new CredentialBox(newKey).inspect('garbage').state, 'unreadable');
});

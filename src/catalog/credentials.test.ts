import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CredentialBox } from './credentials.ts';

test('sealed credentials open only with the same key and never contain the plain text', () => {
  const box = new CredentialBox(randomBytes(32));
  const sealed = box.seal('sk-upstream-secret');
  assert.ok(!sealed.includes('sk-upstream-secret'));
  assert.notEqual(box.seal('sk-upstream-secret'), sealed, 'a fresh IV each time');
  assert.equal(box.open(sealed), 'sk-upstream-secret');
  assert.throws(() => new CredentialBox(randomBytes(32)).open(sealed));
  const tampered = `${sealed.slice(0, -2)}AA`;
  assert.throws(() => box.open(tampered));
});

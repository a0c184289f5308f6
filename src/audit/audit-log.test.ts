import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REDACTED, redactSecrets } from './audit-log.ts';

test('redactSecrets: secret fields anywhere, and the hub’s own secrets in any field', () => {
  const key = `sk-kai-${'a'.repeat(32)}`;
  const pat = `kaihub-pat-${'B'.repeat(32)}`;
  assert.deepEqual(
    redactSecrets({
      id: 'key_1',
      key,
      prefix: 'sk-kai-AbC123',
      apiKey: 'nv-anything',
      nested: [{ token: pat }, { note: pat }, { apiKey: null }],
      description: 'plain text',
    }),
    {
      id: 'key_1',
      key: REDACTED,
      prefix: 'sk-kai-AbC123',
      apiKey: REDACTED,
      nested: [{ token: REDACTED }, { note: REDACTED }, { apiKey: null }],
      description: 'plain text',
    },
  );
  assert.equal(redactSecrets(42), 42);
  assert.equal(redactSecrets(null), null);
});

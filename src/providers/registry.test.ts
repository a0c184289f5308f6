import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent } from 'undici';
import { DEFAULT_UPSTREAM_LIMITS } from './http.ts';
import { ADAPTER_NAMES, createAdapters } from './registry.ts';

test('every registered adapter declares the fields it passes on, for chat and embeddings', async () => {
  const agent = new Agent();
  const adapters = createAdapters(agent, {
    local: { modelsDir: '.', threads: 1, parallel: 1 },
    limits: DEFAULT_UPSTREAM_LIMITS,
  });
  assert.deepEqual([...adapters.keys()], ADAPTER_NAMES);
  for (const [name, adapter] of adapters) {
    assert.equal(adapter.name, name);
    assert.ok(adapter.params, `${name} declares params`);
    for (const field of ['model', 'messages'])
      assert.ok(adapter.params.chat.has(field), `${name} chat ${field}`);
    for (const field of ['model', 'input'])
      assert.ok(adapter.params.embeddings.has(field), `${name} embeddings ${field}`);
  }
  await agent.close();
});

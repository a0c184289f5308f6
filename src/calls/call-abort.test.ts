import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { CallAbort } from './call-abort.ts';

test('aborts once, with the given reason or an AbortError; onabort and listeners fire once', () => {
  const call = new CallAbort();
  let fired = 0;
  let handler = 0;
  call.signal.addEventListener('abort', () => fired++, { once: true });
  call.signal.onabort = () => handler++;
  call.signal.throwIfAborted();
  const reason = new DOMException('total upstream time exceeded', 'TimeoutError');
  call.abort(reason);
  call.abort(new Error('second'));
  assert.equal(call.signal.aborted, true);
  assert.equal(call.signal.reason, reason);
  assert.equal(fired, 1);
  assert.equal(handler, 1);
  assert.throws(
    () => call.signal.throwIfAborted(),
    (e) => e === reason,
  );

  const plain = new CallAbort();
  plain.abort();
  assert.equal((plain.reason as DOMException).name, 'AbortError');
});

test('listeners: objects with handleEvent, added twice, removed, removed during the abort, added after it', () => {
  const call = new CallAbort();
  const calls: string[] = [];
  const object = { handleEvent: () => calls.push('object') };
  const removed = () => calls.push('removed');
  const laterRemoved = () => calls.push('later removed');
  call.signal.addEventListener('abort', () => {
    calls.push('first');
    call.signal.removeEventListener('abort', laterRemoved);
  });
  call.signal.addEventListener('abort', object);
  call.signal.addEventListener('abort', object);
  call.signal.addEventListener('abort', removed);
  call.signal.addEventListener('abort', laterRemoved);
  call.signal.addEventListener('abort', () => calls.push('last'));
  call.signal.removeEventListener('abort', removed);
  call.abort();
  call.signal.addEventListener('abort', () => calls.push('after'));
  call.abort();
  assert.deepEqual(calls, ['first', 'object', 'last']);
});

test('timers/promises accepts it and is cancelled by it', async () => {
  const call = new CallAbort();
  const waiting = sleep(10_000, undefined, { signal: call.signal });
  call.abort(new DOMException('client went away', 'AbortError'));
  await assert.rejects(waiting, (e: Error) => e.name === 'AbortError');
});

test('undici accepts it and aborts a call in flight with its reason', async () => {
  const server = createServer(() => {
    // never answers: only the abort can end the call
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const agent = new Agent();
  try {
    const call = new CallAbort();
    const pending = request(`http://127.0.0.1:${port}/`, { dispatcher: agent, signal: call.signal });
    setTimeout(() => call.abort(new DOMException('client went away', 'AbortError')), 50);
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError' || /abort/i.test(e.message));
  } finally {
    await agent.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

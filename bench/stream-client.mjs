#!/usr/bin/env node
// The client side of bench/streams.mjs, in its own process: opens streamed chat completions at a
// steady rate until N are open, reads each to its end, and reports per stream when it was sent, when
// its first byte of content arrived, when the supplier sent that byte (stamped by
// bench/fake-upstream.mjs in `system_fingerprint`), and how it ended. Jobs come over IPC
// (processes.mjs ipcJobs); every stream has a deadline, so a job always ends.
import { Agent, request } from 'undici';

const now = () => performance.timeOrigin + performance.now();

/** One stream: resolves with its timings; never rejects. */
async function oneStream(dispatcher, target, deadlineMs) {
  const sentAt = now();
  const out = {
    sentAt,
    firstByteAt: null,
    supplierFirstAt: null,
    endedAt: null,
    status: 0,
    done: false,
    error: null,
  };
  try {
    const res = await request(target.url, {
      method: 'POST',
      dispatcher,
      headers: target.headers,
      body: target.body,
      signal: AbortSignal.timeout(deadlineMs),
    });
    out.status = res.statusCode;
    let text = '';
    for await (const chunk of res.body) {
      if (out.firstByteAt === null) {
        text += chunk.toString();
        const stamp = /"system_fingerprint":"(\d+(?:\.\d+)?)"/.exec(text);
        if (stamp) {
          out.firstByteAt = now();
          out.supplierFirstAt = Number(stamp[1]);
          text = '';
        }
      } else if (chunk.includes('[DONE]')) {
        out.done = true;
      }
    }
  } catch (error) {
    out.error = String(error?.code ?? error?.name ?? error);
  }
  out.endedAt = now();
  return out;
}

async function run({ target, streams, rampSeconds, deadlineMs }) {
  const dispatcher = new Agent({
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    bodyTimeout: deadlineMs,
  });
  const started = now();
  const gap = (rampSeconds * 1000) / streams;
  const all = [];
  for (let i = 0; i < streams; i++) {
    const due = started + i * gap;
    const wait = due - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    all.push(oneStream(dispatcher, target, deadlineMs));
  }
  const results = await Promise.all(all);
  await dispatcher.close();
  return { results, startedAt: started };
}

process.on('message', async (m) => {
  if (m?.id === undefined) return;
  try {
    process.send({ id: m.id, result: await run(m) });
  } catch (error) {
    process.send({ id: m.id, error: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });

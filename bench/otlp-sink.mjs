#!/usr/bin/env node
// The traced arm's OTLP/HTTP collector: answers every export 200 and counts the spans it received
// (protobuf, the exporter's default, or JSON; gzip or not), so that a run can tell spans the hub
// exported from spans it dropped. GET /count answers {"spans": n, "exports": n}.
// Run: node bench/otlp-sink.mjs <port> <host>
import { createServer } from 'node:http';
import { gunzipSync } from 'node:zlib';

const [port, host] = process.argv.slice(2);
let spans = 0;
let exports = 0;

function varint(buf, pos) {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

/** Calls `each(field, start, end)` for every length-delimited field of the message in buf[start, end). */
function messages(buf, start, end, each) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(buf, pos);
    const wire = key & 7;
    if (wire === 2) {
      let length;
      [length, pos] = varint(buf, pos);
      each(Math.floor(key / 8), pos, pos + length);
      pos += length;
    } else if (wire === 0) [, pos] = varint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`protobuf wire type ${wire}`);
  }
}

/** ExportTraceServiceRequest: resource_spans (1) → scope_spans (2) → spans (2). */
function protobufSpans(buf) {
  let n = 0;
  messages(buf, 0, buf.length, (f1, s1, e1) => {
    if (f1 !== 1) return;
    messages(buf, s1, e1, (f2, s2, e2) => {
      if (f2 !== 2) return;
      messages(buf, s2, e2, (f3) => {
        if (f3 === 2) n++;
      });
    });
  });
  return n;
}

function jsonSpans(text) {
  let n = 0;
  for (const r of JSON.parse(text).resourceSpans ?? [])
    for (const s of r.scopeSpans ?? []) n += s.spans?.length ?? 0;
  return n;
}

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ spans, exports }));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = Buffer.concat(chunks);
    try {
      if (body.length > 0) {
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        spans += String(req.headers['content-type']).includes('json')
          ? jsonSpans(body.toString('utf8'))
          : protobufSpans(body);
        exports++;
      }
    } catch {
      // not an export (the start-up probe sends an empty POST): counted as nothing
    }
    res.writeHead(200).end();
  });
}).listen(Number(port), host);
